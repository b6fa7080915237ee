"""The global step's memory does not grow with the catalog (issue 24).

The plan is made for catalogs of N and 4N synthetic products (all pointing at one real JPEG), with
``text_sample`` N so the text models train on as many titles at both sizes, and the batches of rows
the step turns into Python objects made small (256) so that N already fills them. Python's own
allocations (and numpy's) are traced with ``tracemalloc``, and the growth of the peak from N to 4N is
divided by the 3N extra products. Arrow's buffers are not traced: the columns the step keeps there
cost about 200 bytes per product (204 on the 10k demo catalog). Measured: 144 bytes per extra product with the columnar step,
980 with the step that held every product as Python objects (it fails this test).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.layouts import DedupeLayout
from ecom_kfp.testing.memory import traced_peak
from ecom_kfp.tfrecord_build import global_step, inputs, splits
from ecom_kfp.tfrecord_build.global_step import plan
from tests.tfrecord_build.helpers import _row, small_config

SMALL = 1500
#: Bytes of traced peak memory one more product may add (see the module docstring).
BYTES_PER_PRODUCT = 450
WORDS = ["Roadster", "Puma", "Nike", "Men", "Women", "Blue", "Red", "Black", "Cotton", "Slim", "Shirt", "Shoes",
         "Watch", "Kurta", "Jeans", "Sports", "Casual", "Printed"]
PATHS = [["Apparel", "Topwear", "Tshirts"], ["Apparel", "Bottomwear", "Jeans"], ["Footwear", "Shoes", "Casual Shoes"],
         ["Accessories", "Watches", "Watches"], []]


def _catalog(root: Path, products: int, image: Path) -> str:
    """``products`` rows of DEDUPED_PRODUCTS: titles of five vocabulary words, a group per three products."""
    rows = []
    for i in range(products):
        title = " ".join(WORDS[(i * k + k * k) % len(WORDS)] for k in range(1, 6)) + f" {i}"
        row = _row(f"P{i:07d}", title, PATHS[i % len(PATHS)], str(image))
        rows.append({**row, "split_group": f"g{i // 3}", "label_conflict": i % 97 == 0})
    layout = DedupeLayout(str(root))
    uri.write_parquet(tables.from_rows(rows, tables.DEDUPED_PRODUCTS), layout.products)
    return layout.root


def _peak(products: str, out: Path) -> int:
    config = small_config(products, str(out), step="plan", text_sample=SMALL)
    report, peak = traced_peak(lambda: plan(config))
    assert report.planned_records + report.rejected == report.input_products
    return peak


def test_plan_peak_memory_does_not_grow_with_the_catalog(tmp_path: Path, myntra_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for module, name in ((inputs, "ROW_BATCH"), (splits, "_HASH_BATCH"), (global_step, "PLAN_BATCH")):
        monkeypatch.setattr(module, name, 256, raising=False)  # raising=False: the old step had no PLAN_BATCH
    image = next((myntra_dir / "images").glob("*.jpg"))
    small, large = _catalog(tmp_path / "small", SMALL, image), _catalog(tmp_path / "large", 4 * SMALL, image)
    _peak(small, tmp_path / "warm-up")  # first-use allocations (SentencePiece, gensim, Pillow)
    peak_small = _peak(small, tmp_path / "plan-small")
    peak_large = _peak(large, tmp_path / "plan-large")
    per_product = (peak_large - peak_small) / (3 * SMALL)
    print(f"traced peak {peak_small} -> {peak_large}: {per_product:.0f} bytes per extra product")
    assert per_product < BYTES_PER_PRODUCT, (peak_small, peak_large, per_product)
