"""Helpers of the tfrecord_build tests (plain functions and constants; fixtures are in conftest.py)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.layouts import DatasetLayout, DedupeLayout
from ecom_kfp.tfrecord_build import TFRecordBuildConfig

ROWS = 240


@dataclass(frozen=True)
class DedupeOutput:
    """A written dedupe output and what the tests need to know about it."""

    layout: DedupeLayout
    product_ids: list[str]
    broken: dict[str, str]  # product id -> expected reject reason
    uncategorised: list[str]


def _row(pid: str, title: str, path: list[str], image_uri: str, source: dict | None = None) -> dict:
    group = "g-" + hashlib.sha1(title.lower().encode()).hexdigest()[:12]
    return {"product_id": pid, "title": title, "title_normalized": title.lower(), "brand": (title.split() or [None])[0],
            "price": 10.0, "category_path": path, "business_value": 1.0 + len(path[-1]) / 10 if path else 1.0,
            "image_url": f"http://127.0.0.1/{pid}.jpg", "image_uri": image_uri, "image_sha256": None,
            "width": 60, "height": 80, "source": json.dumps(source or {}), "group_id": pid, "group_size": 1, "split_group": group,
            "label_conflict": False}


def write_dedupe_output(root: Path, myntra_dir: Path, rows: int = ROWS, broken: bool = True) -> DedupeOutput:
    """Write ``products.parquet`` (DEDUPED_PRODUCTS) and the images it points at under ``root``."""
    images = root / "images"
    images.mkdir(parents=True)
    with open(myntra_dir / "styles.csv", newline="", encoding="utf-8") as fh:
        styles = [r for r in csv.DictReader(fh) if (myntra_dir / "images" / r["image"]).exists()][:rows]
    products = []
    for r in styles:
        target = images / r["image"]
        shutil.copyfile(myntra_dir / "images" / r["image"], target)
        products.append(_row(r["id"], r["productDisplayName"], [r["masterCategory"], r["subCategory"], r["articleType"]],
                             str(target), r))
    # A larger, wide Pillow-made JPEG: exercises down-scaling and padding.
    wide = images / "wide.jpg"
    Image.new("RGB", (320, 120), (200, 40, 40)).save(wide, format="JPEG", quality=90)
    products.append(_row("wide-1", "Roadster Men Red Wide Banner Tshirts", ["Apparel", "Topwear", "Tshirts"], str(wide)))
    expected: dict[str, str] = {}
    uncategorised: list[str] = []
    if broken:
        good = (images / styles[0]["image"]).read_bytes()
        (images / "truncated.jpg").write_bytes(good[: len(good) // 3])
        (images / "page.jpg").write_bytes(b"<html><body>Not Found</body></html>")
        products += [
            _row("bad-truncated", "Nike Men Black Truncated Tshirt", ["Apparel", "Topwear", "Tshirts"],
                 str(images / "truncated.jpg")),
            _row("bad-html", "Puma Men Blue Html Shoes", ["Footwear", "Shoes", "Casual Shoes"], str(images / "page.jpg")),
            _row("bad-missing", "Puma Men Grey Missing Shoes", ["Footwear", "Shoes", "Casual Shoes"], str(images / "gone.jpg")),
            _row("bad-title", "   ", ["Apparel", "Topwear", "Tshirts"], str(images / styles[1]["image"])),
        ]
        expected = {"bad-truncated": "corrupt_image", "bad-html": "corrupt_image", "bad-missing": "image_not_found",
                    "bad-title": "missing_title"}
        products.append(_row("no-category", "Mystery Item Without Category", [], str(images / styles[2]["image"])))
        uncategorised.append("no-category")
    layout = DedupeLayout(str(root))
    uri.write_parquet(tables.from_rows(products, tables.DEDUPED_PRODUCTS), layout.products)
    return DedupeOutput(layout, [p["product_id"] for p in products], expected, uncategorised)


def small_config(products: str, out: str, **overrides) -> TFRecordBuildConfig:
    """A build config sized for tests: tiny images and text models, several shards, one process."""
    settings = dict(products=products, out=out, image_size=32, doc2vec_dim=8, doc2vec_epochs=5, doc2vec_infer_epochs=3,
                    spm_vocab_size=2000,
                    min_class_count=3, shard_target_mb=0.05, workers=1, progress=False)
    settings.update(overrides)
    return TFRecordBuildConfig(**settings)


def shard_records(root: str) -> dict[str, list[bytes]]:
    """Every shard file of a dataset (relative path) -> its records' serialized bytes, in file order."""
    import tensorflow as tf

    layout = DatasetLayout(root)
    found = {}
    for split in layout.SPLITS:
        for shard in sorted(uri.list_files(layout.split_dir(split), suffix=".tfrecord.gz")):
            records = tf.data.TFRecordDataset([shard], compression_type="GZIP")
            found[f"{split}/{shard.rsplit('/', 1)[-1]}"] = [r.numpy() for r in records]
    return found
