"""Read the dedupe output and set aside the products that cannot become records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.features import model_title
from ecom_kfp.contracts.layouts import DedupeLayout
from ecom_kfp.contracts.tables import Reject
from ecom_kfp.tfrecord_build.rejects import Reason

#: The columns of :data:`~ecom_kfp.contracts.tables.DEDUPED_PRODUCTS` a record needs.
COLUMNS = ("product_id", "title", "category_path", "business_value", "image_uri", "split_group", "label_conflict")
#: Rows turned into Python objects at a time.
ROW_BATCH = 10_000


class InputError(ValueError):
    """``--products`` does not name a usable dedupe output."""


@dataclass(frozen=True, slots=True)
class Product:
    """The fields of one deduplicated product that a record needs.

    Attributes:
        product_id: Catalog id.
        title: Raw title, as shown in the shop, then the words of the build's ``--title-attributes``.
        category_path: Source category path, most general first (may be empty).
        business_value: Weight of the product for business-value scoring.
        image_uri: The local or ``gs://`` copy of the image ingest stored.
        group_id: Leak group (dedupe's ``split_group``), which the splits never cut; products without
            one form their own group.
        label_conflict: Its image is byte-identical to one of a product of another category (dedupe's
            ``label_conflict``), so its label is in doubt: it never goes to the test split.
    """

    product_id: str
    title: str
    category_path: tuple[str, ...]
    business_value: float
    image_uri: str
    group_id: str
    label_conflict: bool = False


def products_uri(products: str) -> str:
    """The Parquet file behind ``--products``: the file itself, or ``products.parquet`` in a dedupe output."""
    return products if products.endswith(".parquet") else DedupeLayout(products).products


@dataclass(frozen=True)
class Catalog:
    """The usable products as columns: what the global step holds per product is a few column values.

    Attributes:
        table: One row per usable product, in input order: ``product_id``, ``title`` (stripped, then
            the attribute words of :func:`read_catalog`), ``image_uri``, ``business_value`` (1.0 when
            null), ``group_id`` (the product id when it has no group), ``label_conflict`` and ``path``
            (index into ``paths``).
        paths: The distinct cleaned category paths, most general first (``()`` for none).
    """

    table: pa.Table
    paths: list[tuple[str, ...]]

    def column(self, name: str) -> pa.Array:
        """One column of :attr:`table` as a single array."""
        return self.table.column(name).combine_chunks()

    def products(self) -> list[Product]:
        """The products as objects (for callers that want a few thousand of them, such as tests)."""
        return [Product(row["product_id"], row["title"], self.paths[row["path"]], row["business_value"],
                        row["image_uri"], row["group_id"], row["label_conflict"]) for row in self.table.to_pylist()]


CATALOG_SCHEMA = pa.schema([("product_id", pa.string()), ("title", pa.string()), ("image_uri", pa.string()),
                            ("business_value", pa.float64()), ("group_id", pa.string()),
                            ("label_conflict", pa.bool_()), ("path", pa.int32())])


def read_products(products: str, title_attributes: Sequence[str] = ()) -> tuple[list[Product], list[Reject]]:
    """:func:`read_catalog`, the products as objects."""
    catalog, rejected = read_catalog(products, title_attributes)
    return catalog.products(), rejected


def read_catalog(products: str, title_attributes: Sequence[str] = ()) -> tuple[Catalog, list[Reject]]:
    """Read ``--products`` into the usable products (as columns) and rejects, in input order.

    With ``title_attributes``, a product's title is the text the model reads
    (:func:`~ecom_kfp.contracts.features.model_title`): its title, then those columns of its
    catalog row. A blank title is rejected before that, so attributes never stand in for a title.

    Raises:
        InputError: the file is missing, lacks one of the :data:`COLUMNS` of
            :data:`~ecom_kfp.contracts.tables.DEDUPED_PRODUCTS`, or has no rows (an empty catalog leaves
            nothing to split, label or train on).
    """
    source = products_uri(products)
    if not uri.exists(source):
        raise InputError(f"--products {products}: no products table at {source}; is this a dedupe output?")
    # Only the columns a record needs: the rest (source rows above all) would cost memory per product.
    columns = [*COLUMNS, "source"] if title_attributes else list(COLUMNS)
    schema = pa.schema([tables.DEDUPED_PRODUCTS.field(name) for name in columns])
    try:
        table = tables.conform(uri.read_parquet(source, columns=columns), schema)
    except (ValueError, KeyError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"--products {products}: not a dedupe products table with the columns {columns} "
                         f"({str(err).splitlines()[0]})") from err
    if table.num_rows == 0:
        raise InputError(f"--products {products}: the products table is empty; there is nothing to build a dataset from")
    path_codes: dict[tuple[str, ...], int] = {}
    kept: list[pa.RecordBatch] = []
    rejected: list[Reject] = []
    # Batch by batch: the whole table as Python objects at once would cost about a kilobyte per product.
    for batch in table.to_batches(max_chunksize=ROW_BATCH):
        columns: dict[str, list] = {name: [] for name in CATALOG_SCHEMA.names}
        for row in batch.to_pylist():
            pid = row["product_id"]
            title = (row["title"] or "").strip()
            if not title:
                rejected.append(Reject(pid, Reason.MISSING_TITLE, "title is null or blank"))
                continue
            if not row["image_uri"]:
                rejected.append(Reject(pid, Reason.MISSING_IMAGE, "image_uri is null or blank"))
                continue
            if title_attributes:
                title = model_title(title, row["source"], title_attributes)
            path = tuple(c.strip() for c in (row["category_path"] or []) if c and c.strip())
            business_value = row["business_value"]
            for name, value in (("product_id", pid), ("title", title), ("image_uri", row["image_uri"]),
                                 ("business_value", 1.0 if business_value is None else float(business_value)),
                                 ("group_id", row["split_group"] or pid), ("label_conflict", bool(row["label_conflict"])),
                                 ("path", path_codes.setdefault(path, len(path_codes)))):
                columns[name].append(value)
        kept.append(pa.record_batch(columns, schema=CATALOG_SCHEMA))
    return Catalog(pa.Table.from_batches(kept, CATALOG_SCHEMA).combine_chunks(), list(path_codes)), rejected
