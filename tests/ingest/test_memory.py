"""Ingest's memory does not grow with the catalog (issue 24).

The stage is run on catalogs of N and 4N products whose images are served on loopback, with the
window of products held and the Parquet row groups made small (128) so that N already fills them.
Python's own allocations are traced (``tracemalloc``), and the growth of the peak from N to 4N is
divided by the 3N extra products. Measured on this catalog (3 KB records): ~1.3 KB per extra product
with the streaming stage (the product ids and the compact map of sources it keeps, ~300 bytes, plus
the reader's buffers of the longer file), ~4.1 KB with the stage that kept every product and row
until the end (it fails this test).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecom_kfp.demo.serve import serve_directory
from ecom_kfp.ingest import IngestConfig, run, stage
from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.testing.memory import traced_peak
from tests.ingest.helpers import TRUSTED, jpeg_bytes, read_outputs

SMALL = 400
#: Bytes of traced peak memory one more product may add (see the module docstring).
BYTES_PER_PRODUCT = 2500


def _catalog(path: Path, products: int) -> Path:
    """``products`` JSON lines of ~3 KB, each with its own source (one served JPEG; the query string differs)."""
    with open(path, "w", encoding="utf-8") as out:
        for i in range(products):
            out.write(json.dumps({"product_id": f"P{i:06d}", "title": f"Cotton Crew Neck T-Shirt Style {i}",
                                  "brand": "Acme", "price": 9.99, "category_path": ["Apparel", "Topwear", "Tshirts"],
                                  "image_url": f"p.jpg?i={i}", "notes": "x" * 3000}) + "\n")
    return path


def _peak(catalog: Path, base_url: str, out: Path) -> int:
    config = IngestConfig(catalog=str(catalog), out=str(out), images_base=base_url, progress=False,
                          fetch=FetchConfig(concurrency=8, per_host=8, policy=TRUSTED))
    report, peak = traced_peak(lambda: run(config))
    assert report.accepted == report.input_records, report.rejects_by_reason
    return peak


def test_peak_memory_does_not_grow_with_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "WINDOW_PRODUCTS", 128)
    monkeypatch.setattr(stage, "ROW_GROUP_ROWS", 128)
    images = tmp_path / "images"
    images.mkdir()
    (images / "p.jpg").write_bytes(jpeg_bytes())
    small, large = _catalog(tmp_path / "small.jsonl", SMALL), _catalog(tmp_path / "large.jsonl", 4 * SMALL)
    with serve_directory(images) as base_url:
        _peak(small, base_url, tmp_path / "warm-up")  # first-use allocations (event loop, session, codecs)
        peak_small = _peak(small, base_url, tmp_path / "small")
        peak_large = _peak(large, base_url, tmp_path / "large")
    per_product = (peak_large - peak_small) / (3 * SMALL)
    assert per_product < BYTES_PER_PRODUCT, (peak_small, peak_large, per_product)


def test_a_full_window_waits_with_worker_processes_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a window of 16 products, two fetch processes are fed in pauses; every product arrives in order."""
    monkeypatch.setattr(stage, "WINDOW_PRODUCTS", 16)
    images = tmp_path / "images"
    images.mkdir()
    (images / "p.jpg").write_bytes(jpeg_bytes())
    catalog = _catalog(tmp_path / "catalog.jsonl", 200)
    with serve_directory(images) as base_url:
        report = run(IngestConfig(catalog=str(catalog), out=str(tmp_path / "out"), images_base=base_url, progress=False,
                                  fetch=FetchConfig(concurrency=8, per_host=8, fetch_processes=2, policy=TRUSTED)))
    products, rejects = read_outputs(tmp_path / "out")
    assert report.accepted == 200 and not rejects
    assert [p["product_id"] for p in products] == [f"P{i:06d}" for i in range(200)]
