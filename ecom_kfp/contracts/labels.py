"""Per-level label vocabularies: ``labels/level_<k>.txt``.

Levels count from 1 (level 1 = the most general, e.g. "Apparel"). Layout: one class name per
line as a JSON string (``"Apparel > Topwear"``), UTF-8; the line number (from 0) is the class id
used in the TFRecord label features and the model's output heads. JSON escaping makes any name
round-trip: a newline, a line or paragraph separator (U+2028/2029, U+0085, escaped too although
JSON does not require it, because ``str.splitlines`` and many editors break lines there) or a quote
inside a name cannot shift the ids of the classes after it. Files of earlier versions (plain text,
one name per line) are still read: a line that does not start with ``"`` is a plain name. A class at level ``k`` is the category path prefix of length ``k`` joined
with ``" > "`` (so "Apparel > Topwear" at level 2), which keeps
names unique across parents. Line 0 is always :data:`OTHER`: rare and unknown classes fold into it
so the model always has somewhere to put them, and a lookup never fails.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ecom_kfp import uri

OTHER = "other"
SEPARATOR = " > "


def class_name(category_path: Sequence[str], level: int) -> str | None:
    """The class of a product at ``level`` (1-based), or ``None`` when its path is shorter."""
    if level < 1:
        raise ValueError(f"levels count from 1, got {level}")
    if len(category_path) < level:
        return None
    return SEPARATOR.join(category_path[:level])


def path_from_name(name: str) -> list[str]:
    """Inverse of :func:`class_name` (``"A > B"`` -> ``["A", "B"]``)."""
    return name.split(SEPARATOR)


@dataclass(frozen=True)
class Vocabulary:
    """The classes of one taxonomy level, ``classes[0] == OTHER``."""

    level: int
    classes: tuple[str, ...]
    _index: dict[str, int] = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not self.classes or self.classes[0] != OTHER:
            raise ValueError(f"level {self.level} vocabulary must start with {OTHER!r}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"level {self.level} vocabulary has repeated classes")
        object.__setattr__(self, "_index", {name: i for i, name in enumerate(self.classes)})

    def __len__(self) -> int:
        return len(self.classes)

    def lookup(self, name: str | None) -> int:
        """Class id of ``name``; unknown or missing names map to ``OTHER`` (0)."""
        return self._index.get(name, 0) if name is not None else 0

    def contains(self, name: str | None) -> bool:
        """True when ``name`` has its own class (not folded into ``OTHER``)."""
        return name in self._index and name != OTHER

    @classmethod
    def from_counts(cls, level: int, counts: Counter[str], min_count: int) -> Vocabulary:
        """Keep classes seen at least ``min_count`` times, most frequent first; fold the rest."""
        kept = sorted((n for n, c in counts.items() if c >= min_count and n != OTHER),
                      key=lambda n: (-counts[n], n))
        return cls(level, (OTHER, *kept))

    def save(self, labels_dir: str) -> str:
        """Write ``level_<k>.txt`` under ``labels_dir``; returns its URI."""
        target = vocabulary_uri(labels_dir, self.level)
        uri.write_text(target, dumps_names(self.classes))
        return target

    @classmethod
    def load(cls, labels_dir: str, level: int) -> Vocabulary:
        """Read ``level_<k>.txt`` from ``labels_dir``."""
        return cls(level, loads_names(uri.read_text(vocabulary_uri(labels_dir, level))))


def dumps_names(names: Iterable[str]) -> str:
    """The text of a vocabulary file: one JSON string per line (see the module docstring)."""
    return "".join(_escape_line_breaks(json.dumps(name, ensure_ascii=False)) + "\n" for name in names)


def loads_names(text: str) -> tuple[str, ...]:
    """Inverse of :func:`dumps_names`; also reads the plain one-name-per-line files of earlier versions.

    Raises:
        ValueError: a line starts like a JSON string but is not one.
    """
    names = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line:
            continue
        if not line.startswith('"'):
            names.append(line)
            continue
        try:
            name = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"label file line {number} is not a JSON string: {err}") from err
        if not isinstance(name, str):
            raise ValueError(f"label file line {number} is not a JSON string")
        names.append(name)
    return tuple(names)


def _escape_line_breaks(text: str) -> str:
    return text.translate(_LINE_BREAK_ESCAPES)


#: Characters ``str.splitlines`` breaks at that JSON leaves unescaped with ``ensure_ascii=False``.
_LINE_BREAK_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


def vocabulary_uri(labels_dir: str, level: int) -> str:
    """URI of the vocabulary file of ``level``."""
    return uri.join(labels_dir, f"level_{level}.txt")


def load_all(labels_dir: str, num_levels: int) -> list[Vocabulary]:
    """All level vocabularies, level 1 first."""
    return [Vocabulary.load(labels_dir, k) for k in range(1, num_levels + 1)]


def save_all(vocabularies: Iterable[Vocabulary], labels_dir: str) -> list[str]:
    """Write every vocabulary; returns their URIs."""
    return [v.save(labels_dir) for v in vocabularies]
