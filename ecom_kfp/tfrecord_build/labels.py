"""Per-level label vocabularies built from the training split.

Policy (issue 21): every class seen in training is kept (``min_class_count`` 1, the default), so a
class seen once is a class the model can answer; ``other`` is then only for classes never seen in
training (and paths too short for the level). Folding, when a higher ``min_class_count`` asks
for it, is decided on training records only (val and test never influence the label space), per
level: a class with fewer than ``min_class_count`` training products is folded. A parent always
has at least as many products as each of its children, so folding never keeps a child whose
parent was folded. Why a record ends up ``other`` at a level is one of :class:`OtherReason`.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ecom_kfp.contracts.labels import OTHER, Vocabulary, class_name


class OtherReason(str, enum.Enum):
    """Why a record is labelled ``other`` at a level."""

    NO_CATEGORY = "no_category"  # its category path is shorter than the level (or empty)
    UNMAPPED = "unmapped"  # a taxonomy mapping is in use and has no entry for its source path
    FOLDED = "folded"  # its class has fewer than min_class_count training records
    UNSEEN = "unseen"  # its class never occurs in training (val/test only)


@dataclass(frozen=True)
class Labels:
    """A product's class id per level and, where the id is ``other``, why."""

    ids: tuple[int, ...]
    other_reasons: tuple[OtherReason | None, ...]


@dataclass(frozen=True)
class LabelSpace:
    """The vocabularies of all levels and the training counts they were built from.

    Attributes:
        vocabularies: One per level, level 1 first.
        train_counts: Training products per class name, per level.
        min_class_count: The folding threshold.
    """

    vocabularies: tuple[Vocabulary, ...]
    train_counts: tuple[Counter[str], ...]
    min_class_count: int

    @property
    def num_levels(self) -> int:
        return len(self.vocabularies)

    @classmethod
    def build(cls, train_paths: Sequence[Sequence[str]], max_levels: int, min_class_count: int) -> LabelSpace:
        """Vocabularies for ``min(max_levels, deepest training path)`` levels (at least one)."""
        depth = max((len(p) for p in train_paths), default=0)
        num_levels = max(1, min(max_levels, depth))
        counts = tuple(Counter(name for p in train_paths if (name := class_name(p, level)) is not None)
                       for level in range(1, num_levels + 1))
        vocabularies = tuple(Vocabulary.from_counts(level, counts[level - 1], min_class_count)
                             for level in range(1, num_levels + 1))
        return cls(vocabularies, counts, min_class_count)

    def label(self, category_path: Sequence[str] | None) -> Labels:
        """Class ids of a category path (``None`` = unmapped by the taxonomy mapping)."""
        ids, reasons = [], []
        for vocabulary, counts in zip(self.vocabularies, self.train_counts, strict=True):
            name = class_name(category_path, vocabulary.level) if category_path is not None else None
            class_id = vocabulary.lookup(name)
            ids.append(class_id)
            if class_id != 0 or name == OTHER:
                reasons.append(None)
            elif category_path is None:
                reasons.append(OtherReason.UNMAPPED)
            elif name is None:
                reasons.append(OtherReason.NO_CATEGORY)
            else:
                reasons.append(OtherReason.FOLDED if counts[name] else OtherReason.UNSEEN)
        return Labels(tuple(ids), tuple(reasons))

    def folding_report(self) -> dict[str, dict]:
        """Per level: classes kept, and the folded classes with their training counts."""
        report = {}
        for vocabulary, counts in zip(self.vocabularies, self.train_counts, strict=True):
            folded = {name: n for name, n in sorted(counts.items()) if not vocabulary.contains(name) and name != OTHER}
            report[f"level_{vocabulary.level}"] = {
                "classes": len(vocabulary) - 1,
                "folded_classes": folded,
                "folded_train_records": sum(folded.values()),
            }
        return report
