"""``training.json``: what a model was trained on, inside the files its digests cover.

Evaluate chooses where to fit its temperatures from this record: on the validation split, or, for
a model trained on val too (``--fit-on-val``), on the test split with cross-fitting, because a
model is right on nearly every product it was trained on and a temperature fitted there makes its
probabilities over-confident on new products. The record is part of the model's payload
(:attr:`~ecom_kfp.contracts.layouts.ModelLayout.PAYLOAD`), so it is verified with the SavedModel
before it is read, it counts in the content digest evaluate blesses, and push serves it
(``assets.extra/training.json``). ``report.json`` also lists the splits, for people; nothing
decides on it, since no digest covers it.

Train writes the record before the digests; the ensemble stage writes the union of its members'.
A model without it (written by an older ecom-kfp or another tool) is calibrated as one that may have
been trained on the validation split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import ModelLayout

#: The splits a dataset has; a record naming another is malformed.
SPLITS = ("train", "val", "test")


class TrainingRecordError(ValueError):
    """``training.json`` is not a record this contract describes."""


@dataclass(frozen=True)
class TrainingRecord:
    """The contents of ``training.json``.

    Attributes:
        fit_splits: The dataset splits the model's weights were fitted on, sorted.
    """

    fit_splits: tuple[str, ...]

    @classmethod
    def of(cls, splits: Iterable[str]) -> TrainingRecord:
        """A record of ``splits`` (repeats dropped, sorted, so equal sets give equal bytes).

        Raises:
            TrainingRecordError: a split is not one of :data:`SPLITS`.
        """
        splits = sorted(set(splits))
        unknown = [s for s in splits if s not in SPLITS]
        if unknown or not splits:
            raise TrainingRecordError(f"fit_splits must be a non-empty list of {', '.join(SPLITS)}; got {splits}")
        return cls(tuple(splits))

    @property
    def trained_on_val(self) -> bool:
        return "val" in self.fit_splits

    def write(self, model: ModelLayout) -> None:
        """Write ``training.json`` into ``model`` (before its digests, which must cover it)."""
        uri.write_json(model.training, {"fit_splits": list(self.fit_splits)})

    @classmethod
    def read(cls, model: ModelLayout) -> TrainingRecord | None:
        """The record of ``model`` (read it from a verified copy); None when the model has none.

        Raises:
            TrainingRecordError: the file is there but is not a record (its producer wrote a bad
                one: the digests say nobody changed it since).
        """
        if not uri.exists(model.training):
            return None
        try:
            listed = uri.read_json(model.training)
        except ValueError as error:
            raise TrainingRecordError(f"{model.training}: not JSON ({error})") from None
        splits = listed.get("fit_splits") if isinstance(listed, dict) else None
        if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
            raise TrainingRecordError(f"{model.training}: 'fit_splits' must be a list of split names; got {splits!r}")
        try:
            return cls.of(splits)
        except TrainingRecordError as error:
            raise TrainingRecordError(f"{model.training}: {error}") from None

    @classmethod
    def union(cls, records: Iterable[TrainingRecord | None]) -> TrainingRecord | None:
        """Every split any of ``records`` was fitted on; None when any of them is unknown."""
        records = list(records)
        if not records or any(r is None for r in records):
            return None
        return cls.of(split for r in records for split in r.fit_splits)
