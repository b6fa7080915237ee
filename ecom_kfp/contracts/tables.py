"""Arrow schemas of the tables that cross stage boundaries.

Producers call :func:`conform` before writing so a table always carries exactly these columns in
this order; consumers may rely on them. ``source`` keeps the catalog row's original columns as a
JSON object so no input information is lost, whatever the catalog format.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

#: One row per accepted product, written by ingest (``products.parquet``).
PRODUCTS = pa.schema(
    [
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("title_normalized", pa.string()),
        pa.field("brand", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("category_path", pa.list_(pa.string())),
        pa.field("business_value", pa.float64()),
        pa.field("image_url", pa.string()),
        pa.field("image_uri", pa.string()),
        pa.field("image_sha256", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("source", pa.string()),
    ]
)

#: Products kept by dedupe: ingest's columns plus the duplicate group they represent (``group_id``:
#: the kept product's id; ``group_size``: it and the copies removed into it), the leak group whose
#: products must share a split (``split_group``), and whether the product's image is byte-identical
#: to one of a product of another category (``label_conflict``: keep it out of golden test sets).
DEDUPED_PRODUCTS = pa.schema([*PRODUCTS, pa.field("group_id", pa.string()), pa.field("group_size", pa.int32()),
                              pa.field("split_group", pa.string()), pa.field("label_conflict", pa.bool_())])

#: One row per rejected catalog entry, in every stage that rejects (``rejects.parquet``).
REJECTS = pa.schema(
    [
        pa.field("product_id", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
    ]
)

#: One row per scored product, written by batch prediction (``predictions.parquet``). Per-level
#: columns are lists indexed by level - 1 (level 1 first); a class is named as in ``labels/level_<k>.txt``.
#: ``catalog_path``, ``agrees_with_catalog``, ``catalog_probability`` and ``suspect_label`` are null for
#: products without a catalog category.
PREDICTIONS = pa.schema(
    [
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("top_classes", pa.list_(pa.list_(pa.string()))),
        pa.field("top_probabilities", pa.list_(pa.list_(pa.float32()))),
        pa.field("predicted_path", pa.list_(pa.string())),
        pa.field("predicted_level", pa.int32()),
        pa.field("confidence", pa.float32()),
        pa.field("threshold", pa.float32()),
        pa.field("accepted", pa.bool_()),
        pa.field("accepted_level", pa.int32()),
        pa.field("catalog_path", pa.list_(pa.string())),
        pa.field("agrees_with_catalog", pa.bool_()),
        pa.field("catalog_probability", pa.float32()),
        pa.field("suspect_label", pa.bool_()),
    ]
)

#: One row per product dropped as a duplicate of a kept one (``duplicates.parquet``).
DUPLICATES = pa.schema(
    [
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("group_id", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("distance", pa.float64()),
        pa.field("kept_product_id", pa.string(), nullable=False),
    ]
)


def column_key(name: str) -> str:
    """A catalog column name compared case- and punctuation-insensitively (``baseColour`` = ``base_colour``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def source_columns(source: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The catalog row a ``source`` value holds (its JSON text, or the row itself), keyed by
    :func:`column_key`; ``{}`` for a missing or unreadable row, which a seller's feed may well send."""
    if isinstance(source, str):
        try:
            source = json.loads(source) if source else {}
        except json.JSONDecodeError:
            source = {}
    return {column_key(str(k)): v for k, v in source.items()} if isinstance(source, Mapping) else {}


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast ``table``'s columns to ``schema``, failing on a missing column.

    Args:
        table: A table with at least the schema's columns.
        schema: One of the schemas in this module.

    Returns:
        A table with exactly ``schema``'s columns, in order.

    Raises:
        ValueError: A required column is missing.
    """
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ValueError(f"table lacks column(s) {missing} required by the contract")
    return table.select(schema.names).cast(schema)


def from_rows(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table of ``schema`` from dict rows; absent keys become nulls."""
    rows = list(rows)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


@dataclass(frozen=True)
class Reject:
    """One rejected product; with the name of the stage that rejected it, a row of :data:`REJECTS`.

    Attributes:
        product_id: The product's id, None when the entry had none (e.g. a malformed line).
        reason: The rejecting stage's reason code (a ``str`` enum, so reports count by its value).
        detail: What exactly was wrong with this one entry.
    """

    product_id: str | None
    reason: enum.Enum
    detail: str

    def row(self, stage: str) -> dict[str, str | None]:
        """The :data:`REJECTS` row, as rejected by ``stage``."""
        return {"product_id": self.product_id, "stage": stage, "reason": self.reason.value, "detail": self.detail}


def rejects_table(rejects: Iterable[Reject], stage: str) -> pa.Table:
    """The :data:`REJECTS` table of ``rejects``, all rejected by ``stage``."""
    return from_rows((r.row(stage) for r in rejects), REJECTS)


def empty(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema`` (stages still write their tables when nothing passed)."""
    return schema.empty_table()
