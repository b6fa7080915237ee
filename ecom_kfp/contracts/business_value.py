"""The per-category business value table (``--business-value``), read by ingest and evaluate.

One table serves both stages of a pipeline run, so both read it with this one reader and agree on
what it says. Formats (chosen by the name's ending):

- CSV (default): columns ``category_path,business_value``, path levels joined by ``>``
  (``Apparel > Topwear``);
- ``.json``: an object ``{"Apparel > Topwear": 3.5, ...}``;
- ``.parquet``: the same two columns, the path as a string or as a list of levels.

A value is a finite number >= 0. Paths match case- and spacing-insensitively: a hand-written table
and a catalog spell the same category differently.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ecom_kfp import uri

PATH_SEPARATOR = ">"
PATH_COLUMN = "category_path"
VALUE_COLUMN = "business_value"


def split_path(text: str) -> tuple[str, ...]:
    """``"A > B>C"`` -> ``("A", "B", "C")``; empty levels are dropped."""
    return tuple(level.strip() for level in text.split(PATH_SEPARATOR) if level.strip())


def parse_path(value: object) -> tuple[str, ...]:
    """A category path from a table cell: ``"A > B"`` or a list of levels (Parquet)."""
    if isinstance(value, (list, tuple)):
        return tuple(str(level).strip() for level in value if level is not None and str(level).strip())
    return split_path(str(value)) if value is not None else ()


def _key(path: Sequence[str]) -> tuple[str, ...]:
    # Case and spacing differ between a catalog and a hand-written table; meaning does not.
    return tuple(" ".join(level.split()).casefold() for level in path)


def _entries(table_uri: str) -> list[tuple[object, object]]:
    """The table's (path, value) cells, in file order."""
    if table_uri.lower().endswith(".json"):
        raw = json.loads(uri.read_text(table_uri))
        if not isinstance(raw, dict):
            raise ValueError(f"--business-value {table_uri}: JSON must be an object path -> value")
        return list(raw.items())
    if table_uri.lower().endswith(".parquet"):
        table = uri.read_parquet(table_uri)
        columns = table.column_names
    else:
        reader = csv.DictReader(io.StringIO(uri.read_text(table_uri)))
        columns = reader.fieldnames or []
    missing = {PATH_COLUMN, VALUE_COLUMN} - set(columns)
    if missing:
        raise ValueError(f"--business-value {table_uri}: missing column(s) {sorted(missing)}; needs columns "
                         f"{PATH_COLUMN},{VALUE_COLUMN}; has {list(columns)}")
    if table_uri.lower().endswith(".parquet"):
        return list(zip(table.column(PATH_COLUMN).to_pylist(), table.column(VALUE_COLUMN).to_pylist(), strict=True))
    return [(row[PATH_COLUMN], row[VALUE_COLUMN]) for row in reader]


@dataclass(frozen=True)
class BusinessValueTable:
    """Business value per category path (keys in matching form, see :func:`_key`)."""

    values: Mapping[tuple[str, ...], float]

    @classmethod
    def load(cls, table_uri: str) -> BusinessValueTable:
        """Read a table (see the module docstring) from any URI.

        Raises:
            FileNotFoundError: nothing at ``table_uri``.
            ValueError: a column is missing, an entry has no path or a value that is not a finite
                number >= 0, or the table is empty; the message names ``--business-value``.
        """
        if not uri.exists(table_uri):
            raise FileNotFoundError(f"--business-value {table_uri}: no such file or object")
        values: dict[tuple[str, ...], float] = {}
        for path, value in _entries(table_uri):
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError) as err:
                raise ValueError(f"--business-value {table_uri}: entry {path!r} has non-numeric value "
                                 f"{value!r}") from err
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"--business-value {table_uri}: entry {path!r} has invalid value {value!r}; "
                                 "values are finite numbers >= 0")
            if not parse_path(path):
                raise ValueError(f"--business-value {table_uri}: entry {path!r} -> {value!r} has no category path")
            values[_key(parse_path(path))] = number
        if not values:
            raise ValueError(f"--business-value {table_uri}: the table has no rows")
        return cls(values)

    def lookup(self, path: Sequence[str]) -> float | None:
        """Value of the longest table path that prefixes ``path`` (a product's full path); None when none does."""
        key = _key(path)
        for depth in range(len(key), 0, -1):
            value = self.values.get(key[:depth])
            if value is not None:
                return value
        return None

    def value_of(self, path: Sequence[str]) -> float | None:
        """Value of a category that may be coarser than the table: its own row, else the mean of the
        rows below it (the table is finer than our levels), else its nearest ancestor's row."""
        key = _key(path)
        if key in self.values:
            return self.values[key]
        below = [value for row, value in self.values.items() if row[:len(key)] == key]
        if below:
            return statistics.fmean(below)
        return self.lookup(key[:-1])
