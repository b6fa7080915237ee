"""The myntra-dev dataset the training benchmarks share, built once with ``ecom_kfp.tfrecord_build``.

styles.csv becomes a dedupe-shaped products table (category path masterCategory > subCategory >
articleType, the local image as ``image_uri``, each product its own group), then
``tfrecord-build`` writes the shards. Cached under ``--work`` so each benchmark pays once.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.layouts import DatasetLayout, DedupeLayout

REPO = Path(__file__).resolve().parents[1]
MYNTRA = REPO.parent / "shared" / "data" / "myntra-dev"


def myntra_dataset(work: Path, image_size: int = 64) -> DatasetLayout:
    """Build (or reuse) the myntra-dev TFRecord dataset under ``work``."""
    from ecom_kfp.tfrecord_build.stage import run
    from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig

    layout = DatasetLayout(str(work / f"myntra-dataset-{image_size}"))
    if uri.exists(layout.manifest):
        return layout
    products = DedupeLayout(str(work / "myntra-products"))
    rows = []
    with open(MYNTRA / "styles.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.append({"product_id": row["id"], "title": row["productDisplayName"],
                         "title_normalized": row["productDisplayName"].lower(),
                         "category_path": [row["masterCategory"], row["subCategory"], row["articleType"]],
                         "business_value": 1.0, "image_uri": str(MYNTRA / "images" / row["image"]),
                         "group_id": row["id"], "group_size": 1, "source": "myntra-dev"})
    uri.write_parquet(tables.from_rows(rows, tables.DEDUPED_PRODUCTS), products.products)
    run(TFRecordBuildConfig(products=products.root, out=layout.root, image_size=image_size, max_levels=3))
    return layout
