"""Business value of each test example: the weights of the weighted score.

Where a weight comes from, in order of preference:

1. ``--business-value URI``: a table with columns ``category_path`` and ``business_value`` (CSV,
   path written ``A > B > C``; or Parquet, path as a string or a list of strings), e.g. sales or ad
   popularity per category. An example gets the value of its most specific known category
   (its deepest level whose class is not ``other``), looked up as: the table row with exactly that
   path; else the mean of the rows below it (the table is finer than our levels); else the nearest
   ancestor row. An example no row covers weighs 0 and is counted in ``examples_without_value``.
2. The records' ``business_value`` feature (what ingest took from the catalog and the trainer uses
   as sample weight), when the records carry more than one distinct value.
3. Otherwise category frequency: an example weighs the number of test examples of its true class
   at that level, so popular categories count more (the issue's default when no value is given).

Sources 1 and 2 give an example one weight at every level; source 3 a weight per level.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ecom_kfp import uri
from ecom_kfp.contracts.labels import OTHER, SEPARATOR, Vocabulary, path_from_name

SOURCE_TABLE = "table"
SOURCE_RECORDS = "records"
SOURCE_FREQUENCY = "frequency"
PATH_COLUMN = "category_path"
VALUE_COLUMN = "business_value"


def parse_path(value: object) -> tuple[str, ...]:
    """A category path from a table cell: ``"A > B"`` / ``"A>B"`` or a list of levels."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(SEPARATOR.strip())
    return tuple(p.strip() for p in parts if p is not None and str(p).strip())


@dataclass(frozen=True)
class ValueTable:
    """Business value per category path."""

    values: Mapping[tuple[str, ...], float]

    @classmethod
    def load(cls, table_uri: str) -> ValueTable:
        """Read a CSV or Parquet table (see the module docstring).

        Raises:
            FileNotFoundError: nothing at ``table_uri``.
            ValueError: a column is missing, a value is not a number, or the table is empty.
        """
        if not uri.exists(table_uri):
            raise FileNotFoundError(f"--business-value {table_uri}: no such file")
        if table_uri.endswith(".parquet"):
            table = uri.read_parquet(table_uri)
            missing = {PATH_COLUMN, VALUE_COLUMN} - set(table.column_names)
            rows = list(zip(table.column(PATH_COLUMN).to_pylist(), table.column(VALUE_COLUMN).to_pylist(),
                            strict=True)) if not missing else []
        else:
            reader = csv.DictReader(io.StringIO(uri.read_text(table_uri)))
            missing = {PATH_COLUMN, VALUE_COLUMN} - set(reader.fieldnames or [])
            rows = [(r[PATH_COLUMN], r[VALUE_COLUMN]) for r in reader] if not missing else []
        if missing:
            raise ValueError(f"--business-value {table_uri}: missing column(s) {sorted(missing)}; "
                             f"expected {PATH_COLUMN},{VALUE_COLUMN}")
        values: dict[tuple[str, ...], float] = {}
        for line, (path, value) in enumerate(rows, start=2):
            try:
                number = float(value)
            except (TypeError, ValueError) as err:
                raise ValueError(f"--business-value {table_uri}: row {line} has non-numeric value {value!r}") from err
            if not np.isfinite(number) or number < 0:
                raise ValueError(f"--business-value {table_uri}: row {line} has invalid value {value!r}")
            if parse_path(path):
                values[parse_path(path)] = number
        if not values:
            raise ValueError(f"--business-value {table_uri}: the table has no rows")
        return cls(values)

    def value_of(self, path: tuple[str, ...]) -> float | None:
        """Value of a category: exact row, else mean of finer rows below it, else nearest ancestor."""
        if path in self.values:
            return self.values[path]
        below = [v for p, v in self.values.items() if p[:len(path)] == path]
        if below:
            return float(np.mean(below))
        for depth in range(len(path) - 1, 0, -1):
            if path[:depth] in self.values:
                return self.values[path[:depth]]
        return None


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
                    table: ValueTable | None) -> ExampleWeights:
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
