"""Label vocabulary files round-trip any class name (issue 19, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_kfp.contracts.labels import OTHER, Vocabulary, dumps_names, loads_names, vocabulary_uri

AWKWARD = (OTHER, "Apparel > Topwear", "line\nbreak", "line\u2028separator", "para\u2029graph", "next\x85line",
           'say "hi"', "back\\slash", "tab\there", "carriage\rreturn", "  spaced  ", "Tops > Tees > V-neck",
           "Kurta \u0915\u094d\u200d\u0937", "\"quoted start", "emoji \U0001F455")


def test_every_name_round_trips_with_its_class_id(tmp_path: Path) -> None:
    vocabulary = Vocabulary(2, AWKWARD)
    vocabulary.save(str(tmp_path))
    text = Path(vocabulary_uri(str(tmp_path), 2)).read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(AWKWARD)  # even str.splitlines sees one name per line
    loaded = Vocabulary.load(str(tmp_path), 2)
    assert loaded.classes == AWKWARD
    assert [loaded.lookup(name) for name in AWKWARD] == list(range(len(AWKWARD)))


def test_plain_files_of_earlier_versions_still_load() -> None:
    assert loads_names("other\nApparel\nApparel > Topwear\n") == (OTHER, "Apparel", "Apparel > Topwear")


def test_a_broken_json_line_is_an_error_not_a_shifted_class() -> None:
    with pytest.raises(ValueError, match="line 2"):
        loads_names('"other"\n"unterminated\n"x"\n')


@pytest.mark.parametrize("name", AWKWARD)
def test_dumps_names_writes_one_line_per_name(name: str) -> None:
    assert dumps_names([name]).count("\n") == 1 and loads_names(dumps_names([name])) == (name,)
