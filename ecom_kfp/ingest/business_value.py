"""Per-category business value table (``--business-value``): how much each category is worth.

Format: a CSV with columns ``category_path,business_value`` (path levels joined by ``>``, e.g.
``Apparel > Topwear``), or a JSON object ``{"Apparel > Topwear": 3.5, ...}``. A product takes the
value of the longest table path that is a prefix of its own path, so a table may price whole
subtrees with one line. When a table is given it also lists the categories the catalog owner
knows: a product whose path matches no entry is rejected as ``unknown_category``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ecom_kfp import uri

PATH_SEPARATOR = ">"


def split_path(text: str) -> tuple[str, ...]:
    """``"A > B>C"`` -> ``("A", "B", "C")``; empty levels are dropped."""
    return tuple(level.strip() for level in text.split(PATH_SEPARATOR) if level.strip())


def _key(path: Sequence[str]) -> tuple[str, ...]:
    # Case and spacing differ between a catalog and a hand-written table; meaning does not.
    return tuple(" ".join(level.split()).casefold() for level in path)


@dataclass(frozen=True)
class BusinessValueTable:
    """Category path -> value, looked up by longest prefix."""

    values: Mapping[tuple[str, ...], float]

    @classmethod
    def load(cls, table_uri: str) -> BusinessValueTable:
        """Read a table from a CSV or JSON file at any URI.

        Raises:
            FileNotFoundError / ValueError: naming ``--business-value`` and what is wrong.
        """
        if not uri.exists(table_uri):
            raise FileNotFoundError(f"--business-value {table_uri}: no such file or object")
        text = uri.read_text(table_uri)
        if table_uri.lower().endswith(".json"):
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError(f"--business-value {table_uri}: JSON must be an object path -> value")
            items = list(raw.items())
        else:
            reader = csv.DictReader(io.StringIO(text))
            if not {"category_path", "business_value"} <= set(reader.fieldnames or ()):
                raise ValueError(f"--business-value {table_uri}: CSV needs columns category_path,"
                                 f"business_value; has {reader.fieldnames}")
            items = [(row["category_path"], row["business_value"]) for row in reader]
        values: dict[tuple[str, ...], float] = {}
        for path, value in items:
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number) or not split_path(str(path)):
                raise ValueError(f"--business-value {table_uri}: bad entry {path!r} -> {value!r}")
            values[_key(split_path(str(path)))] = number
        return cls(values)

    def lookup(self, path: Sequence[str]) -> float | None:
        """Value of the longest table path that prefixes ``path``; None when none does."""
        key = _key(path)
        for depth in range(len(key), 0, -1):
            value = self.values.get(key[:depth])
            if value is not None:
                return value
        return None
