"""Merging ingest shards streams: its memory does not grow with the catalog it gathers (issue 24).

Three shard outputs of N and of 4N products in all are merged with the batches made small (256
rows) so that N already fills them. Python's own allocations are traced (``tracemalloc``) and the
growth of the peak from N to 4N is divided by the 3N extra products. Measured: 7 bytes per extra
product streaming (ids and image names in the sqlite3 scratch table); the merge that concatenated
the shards' tables (in Arrow, not even traced) and kept ids and image names in Python sets and lists
gave 199 and fails the bound.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.contracts.tables import Reject
from ecom_kfp.ingest import merge
from ecom_kfp.ingest.merge import merge_shards
from ecom_kfp.ingest.reasons import STAGE, Reason
from ecom_kfp.ingest.stage import ImageCounts
from ecom_kfp.testing.memory import traced_peak

SMALL = 768  # products over the three shards: a multiple of the batches made below
SHARDS = 3
#: Bytes one more product may add to the merge's traced peak (see the module docstring).
BYTES_PER_PRODUCT = 100
REJECTED_EVERY = 10
IMAGES_PER_SHARD = 4


def _shard(root: Path, first: int, products: int) -> str:
    """An ingest output of ``products`` ids from ``first`` (every tenth a reject), with a few stored images."""
    layout = IngestLayout(str(root))
    rows, rejects = [], []
    for i in range(first, first + products):
        pid = f"P{i:07d}"
        if i % REJECTED_EVERY == 0:
            rejects.append(Reject(pid, Reason.MISSING_TITLE, "title is empty"))
            continue
        sha = hashlib.sha256(f"image {i % IMAGES_PER_SHARD} of {first}".encode()).hexdigest()
        rows.append({"product_id": pid, "title": f"Cotton Crew Neck T-Shirt {i}", "brand": "Acme", "price": 9.99,
                     "category_path": ["Apparel", "Topwear", "Tshirts"], "image_url": f"http://shop.example/{i}.jpg",
                     "image_uri": layout.image(sha), "image_sha256": sha, "width": 60, "height": 80,
                     "source": "catalog.jsonl"})
    for k in range(IMAGES_PER_SHARD):
        sha = hashlib.sha256(f"image {k} of {first}".encode()).hexdigest()
        uri.write_bytes(layout.image(sha), sha.encode())
    uri.write_parquet(tables.from_rows(rows, tables.PRODUCTS), layout.products)
    uri.write_parquet(tables.rejects_table(rejects, STAGE), layout.rejects)
    uri.write_json(layout.report, {"input_records": products, "catalog_truncated": False, "images_per_second": 1.0,
                                   "images": {name: 0 for name in ImageCounts.__dataclass_fields__}})
    return layout.root


def _merged_peak(root: Path, products: int) -> int:
    per_shard = products // SHARDS
    shards = [_shard(root / f"shard{k}", k * per_shard, per_shard) for k in range(SHARDS)]
    report, peak = traced_peak(lambda: merge_shards(shards, str(root / "merged"), progress=False))
    assert report.accepted + report.rejected == report.input_records == products
    assert report.rejects_by_reason == {Reason.MISSING_TITLE.value: len(range(0, products, REJECTED_EVERY))}
    assert report.images_copied == SHARDS * IMAGES_PER_SHARD
    merged = IngestLayout(str(root / "merged"))
    written = pq.read_table(merged.products)
    assert written.num_rows == report.accepted
    assert all(Path(p).is_file() for p in written.column("image_uri").to_pylist())
    return peak


def test_merge_memory_does_not_grow_with_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merge, "BATCH_ROWS", 256, raising=False)  # raising=False: the old merge had none
    _merged_peak(tmp_path / "warm-up", SMALL)  # first-use allocations (pyarrow, sqlite3)
    small = _merged_peak(tmp_path / "small", SMALL)
    large = _merged_peak(tmp_path / "large", 4 * SMALL)
    per_product = (large - small) / (3 * SMALL)
    print(f"traced peak {small} -> {large}: {per_product:.0f} bytes per extra product")
    assert per_product < BYTES_PER_PRODUCT, (small, large, per_product)
