"""Business value of each test example: the weights of the weighted score.

Where a weight comes from, in order of preference:

1. ``--business-value URI``: the table of :mod:`ecom_kfp.contracts.business_value` (the one ingest
   read), e.g. sales or ad popularity per category. An example gets the value of its most specific
   known category (its deepest level whose class is not ``other``), looked up with
   :meth:`~ecom_kfp.contracts.business_value.BusinessValueTable.value_of`: the table row with exactly
   that path; else the mean of the rows below it (the table is finer than our levels); else the
   nearest ancestor row. An example no row covers weighs 0 and is counted in ``examples_without_value``.
2. The records' ``business_value`` feature (what ingest took from the catalog and the trainer uses
   as sample weight), when the records carry more than one distinct value.
3. Otherwise category frequency: an example weighs the number of test examples of its true class
   at that level, so popular categories count more (the issue's default when no value is given).

Sources 1 and 2 give an example one weight at every level; source 3 a weight per level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecom_kfp.contracts.business_value import BusinessValueTable
from ecom_kfp.contracts.labels import OTHER, Vocabulary, path_from_name

SOURCE_TABLE = "table"
SOURCE_RECORDS = "records"
SOURCE_FREQUENCY = "frequency"


@dataclass(frozen=True)
class ExampleWeights:
    """Weights ``[num_levels, n]`` and where they came from."""

    weights: np.ndarray
    source: str
    examples_without_value: int

    def at(self, level: int) -> np.ndarray:
        """Weights of ``level`` (1-based)."""
        return self.weights[level - 1]


def deepest_known_path(labels: Sequence[int], vocabularies: Sequence[Vocabulary]) -> tuple[str, ...] | None:
    """Category path of an example's deepest level whose class is not ``other``."""
    for label, vocabulary in zip(reversed(labels), reversed(vocabularies), strict=True):
        name = vocabulary.classes[label]
        if name != OTHER:
            return tuple(path_from_name(name))
    return None


def example_weights(labels: np.ndarray, record_values: np.ndarray, vocabularies: Sequence[Vocabulary],
                    table: BusinessValueTable | None) -> ExampleWeights:
    """Business value of every test example at every level.

    Args:
        labels: True class ids ``[n, num_levels]``.
        record_values: The records' ``business_value`` feature ``[n]``.
        vocabularies: Level vocabularies, level 1 first.
        table: The ``--business-value`` table, if given.

    Raises:
        ValueError: the table gives no test example any value.
    """
    num_levels = labels.shape[1]
    if table is not None:
        cache: dict[tuple[int, ...], float] = {}
        per_example = np.zeros(len(labels))
        for i, row in enumerate(labels.tolist()):
            key = tuple(row)
            if key not in cache:
                path = deepest_known_path(row, vocabularies)
                cache[key] = (table.value_of(path) if path else None) or 0.0
            per_example[i] = cache[key]
        if per_example.sum() <= 0:
            raise ValueError("--business-value: no test example's category is in the table "
                             f"(e.g. {vocabularies[-1].classes[1:4]}); check the category_path spelling")
        return ExampleWeights(np.tile(per_example, (num_levels, 1)), SOURCE_TABLE, int((per_example == 0).sum()))
    record_values = np.asarray(record_values, dtype=np.float64)
    if len(np.unique(record_values)) > 1:
        return ExampleWeights(np.tile(record_values, (num_levels, 1)), SOURCE_RECORDS,
                              int((record_values == 0).sum()))
    frequency = np.stack([np.bincount(labels[:, k])[labels[:, k]] for k in range(num_levels)]).astype(np.float64)
    return ExampleWeights(frequency, SOURCE_FREQUENCY, 0)
