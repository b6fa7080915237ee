"""``training.json`` (:class:`TrainingRecord`): what evaluate decides where to calibrate on."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.contracts.training import TrainingRecord, TrainingRecordError


def test_equal_sets_of_splits_write_equal_bytes(tmp_path: Path) -> None:
    """A one-member ensemble rewrites its member's record: the bytes, so the content digest, must not move."""
    first, second = ModelLayout(str(tmp_path / "a")), ModelLayout(str(tmp_path / "b"))
    TrainingRecord.of(["val", "train"]).write(first)
    TrainingRecord.of(("train", "val", "train")).write(second)
    assert Path(first.training).read_bytes() == Path(second.training).read_bytes()
    assert TrainingRecord.read(first) == TrainingRecord(("train", "val"))
    assert TrainingRecord.read(first).trained_on_val


def test_a_model_without_a_record_reads_as_unknown(tmp_path: Path) -> None:
    assert TrainingRecord.read(ModelLayout(str(tmp_path))) is None


@pytest.mark.parametrize("text", ["{not json", '["train"]', '{"fit_splits": "train"}', '{"fit_splits": [1]}',
                                  '{"fit_splits": []}', '{"fit_splits": ["train", "holdout"]}', "{}"])
def test_a_malformed_record_is_refused(tmp_path: Path, text: str) -> None:
    """The digests say the producer wrote it so: a producer bug is reported, not read as 'not on val'."""
    layout = ModelLayout(str(tmp_path))
    Path(layout.training).write_text(text)
    with pytest.raises(TrainingRecordError, match="training.json"):
        TrainingRecord.read(layout)


def test_the_union_is_unknown_when_any_member_is() -> None:
    train, both = TrainingRecord.of(["train"]), TrainingRecord.of(["train", "val"])
    assert TrainingRecord.union([train, both]) == both
    assert TrainingRecord.union([train]) == train
    assert TrainingRecord.union([train, None]) is None
    assert TrainingRecord.union([]) is None
