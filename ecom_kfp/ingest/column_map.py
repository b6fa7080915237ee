"""``--column-map``: which catalog column(s) feed each field of the products table.

Syntax: comma-separated ``FIELD=SPEC``. ``SPEC`` is a column name; ``a>b>c`` builds a category path
from several columns (one level each); ``a|b`` takes the first non-empty of alternative columns
(e.g. Amazon's ``imUrl|imageURLHighRes``). Fields not mapped keep the format's default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Products-table fields a catalog column can feed.
FIELDS = ("product_id", "title", "brand", "price", "category_path", "business_value", "image_url")
#: Fields without which no product can be accepted: the catalog must be able to provide them.
REQUIRED = ("product_id", "title", "category_path", "image_url")

IDENTITY = {name: name for name in FIELDS}
#: Amazon product metadata, 2014 (``categories``, ``imUrl``) and 2018 (``category``, ``imageURL*``).
AMAZON = {
    "product_id": "asin",
    "title": "title",
    "brand": "brand",
    "price": "price",
    "category_path": "categories|category",
    "image_url": "imUrl|imageURLHighRes|imageURL",
}


@dataclass(frozen=True)
class FieldSpec:
    """Where one field comes from: alternatives, each a sequence of columns (several = a path)."""

    alternatives: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, spec: str) -> FieldSpec:
        alternatives = tuple(tuple(c.strip() for c in alt.split(">")) for alt in spec.split("|"))
        if any(not c for alt in alternatives for c in alt):
            raise ValueError(f"empty column name in {spec!r}")
        return cls(alternatives)

    @property
    def columns(self) -> list[str]:
        return [c for alt in self.alternatives for c in alt]

    def extract(self, record: Mapping[str, Any]) -> Any:
        """The first non-empty alternative: one column's value, or a list of several columns' values."""
        for alt in self.alternatives:
            if len(alt) == 1:
                value = record.get(alt[0])
            else:
                value = [record.get(c) for c in alt]
                if all(_is_empty(v) for v in value):
                    value = None
            if not _is_empty(value):
                return value
        return None


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


@dataclass(frozen=True)
class ColumnMap:
    """Field name -> :class:`FieldSpec`; ``explicit`` holds the fields the user mapped."""

    specs: Mapping[str, FieldSpec]
    explicit: frozenset[str]

    @classmethod
    def parse(cls, text: str, default: Mapping[str, str]) -> ColumnMap:
        """Parse ``--column-map`` text over a format's default mapping.

        Raises:
            ValueError: Unknown field or malformed entry, with the flag and the entry named.
        """
        specs = {name: FieldSpec.parse(spec) for name, spec in default.items()}
        explicit = set()
        for entry in filter(None, (e.strip() for e in text.split(","))):
            name, sep, spec = entry.partition("=")
            name = name.strip()
            if not sep or not spec.strip():
                raise ValueError(f"--column-map entry {entry!r} is not FIELD=COLUMN")
            if name not in FIELDS:
                raise ValueError(f"--column-map field {name!r} is unknown; fields: {', '.join(FIELDS)}")
            try:
                specs[name] = FieldSpec.parse(spec)
            except ValueError as err:
                raise ValueError(f"--column-map entry {entry!r}: {err}") from err
            explicit.add(name)
        return cls(specs, frozenset(explicit))

    def check_columns(self, columns: Sequence[str]) -> ColumnMap:
        """Check the mapping against a catalog with a fixed header (CSV, Parquet).

        Default mappings of optional fields that the catalog lacks are dropped; a required field
        or an explicitly mapped one without its columns is a configuration error.

        Returns:
            The mapping restricted to what the catalog can provide.

        Raises:
            ValueError: naming the field, the missing column(s) and the catalog's columns.
        """
        present = set(columns)
        kept = {}
        for name, spec in self.specs.items():
            usable = tuple(alt for alt in spec.alternatives if set(alt) <= present)
            if usable:
                kept[name] = FieldSpec(usable)
            elif name in REQUIRED or name in self.explicit:
                raise ValueError(
                    f"--column-map: field {name!r} needs column(s) {spec.columns} but the catalog has "
                    f"{list(columns)}; pass --column-map {name}=COLUMN")
        return ColumnMap(kept, self.explicit)

    def get(self, record: Mapping[str, Any], name: str) -> Any:
        """The raw value of field ``name`` in ``record`` (None when unmapped or empty)."""
        spec = self.specs.get(name)
        return spec.extract(record) if spec else None
