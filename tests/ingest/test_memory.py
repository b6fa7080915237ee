"""Ingest's memory does not grow with the catalog (issue 24).

The stage is run on catalogs of N and 4N products whose images are served on loopback, with the
window of products held and the Parquet row groups made small (128) so that N already fills them.
Python's own allocations are traced (``tracemalloc``), and their growth from N to 4N is divided by
the 3N extra products, for two figures:

- the peak: ~0.6-1.5 KB per extra product measured (a longer run meets more coincidences of full
  buffers, and the loopback server's threads are traced too); the stage that kept every product
  and row until the end gave ~4.1 KB and fails the bound;
- what the run holds once every product is through (at the stream's close, after a collection):
  ~18 bytes per extra product measured with the product ids and source outcomes on disk
  (:mod:`ecom_kfp.ingest.scratch`), ~185-195 with them in Python dicts and sets (fails the bound).
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from pathlib import Path

import pytest

from ecom_kfp.demo.serve import serve_directory
from ecom_kfp.ingest import IngestConfig, run, stage
from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.testing.memory import traced_peak
from tests.ingest.helpers import TRUSTED, jpeg_bytes, read_outputs

pytestmark = pytest.mark.slow

SMALL = 384  # a multiple of the row groups (128 rows) made below: no partly filled group at the end
#: Bytes one more product may add to the traced peak (see the module docstring).
PEAK_BYTES_PER_PRODUCT = 2500
#: Bytes one more product may add to what the run holds once every product is through.
HELD_BYTES_PER_PRODUCT = 60


def _catalog(path: Path, products: int) -> Path:
    """``products`` JSON lines of ~3 KB, each with its own source (one served JPEG; the query string differs)."""
    with open(path, "w", encoding="utf-8") as out:
        for i in range(products):
            out.write(json.dumps({"product_id": f"P{i:06d}", "title": f"Cotton Crew Neck T-Shirt Style {i}",
                                  "brand": "Acme", "price": 9.99, "category_path": ["Apparel", "Topwear", "Tshirts"],
                                  "image_url": f"p.jpg?i={i}", "notes": "x" * 3000}) + "\n")
    return path


def _traced(catalog: Path, base_url: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Traced bytes of one run: its peak, and what it holds once every product is through (at the
    stream's close, before the tables are closed: what grows with the catalog is all still there)."""
    config = IngestConfig(catalog=str(catalog), out=str(out), images_base=base_url, progress=False,
                          fetch=FetchConfig(concurrency=8, per_host=8, policy=TRUSTED))
    held = []
    close = stage._Stream.close

    def close_and_measure(stream: stage._Stream) -> None:
        gc.collect()  # what is still referenced, not cycles waiting for the collector
        held.append(tracemalloc.get_traced_memory()[0])
        close(stream)

    monkeypatch.setattr(stage._Stream, "close", close_and_measure)
    report, peak = traced_peak(lambda: run(config))
    assert report.accepted == report.input_records, report.rejects_by_reason
    return peak, held[0]


def test_memory_does_not_grow_with_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "WINDOW_PRODUCTS", 128)
    monkeypatch.setattr(stage, "ROW_GROUP_ROWS", 128)
    images = tmp_path / "images"
    images.mkdir()
    (images / "p.jpg").write_bytes(jpeg_bytes())
    small, large = _catalog(tmp_path / "small.jsonl", SMALL), _catalog(tmp_path / "large.jsonl", 4 * SMALL)
    with serve_directory(images) as base_url:
        _traced(small, base_url, tmp_path / "warm-up", monkeypatch)  # first-use allocations (event loop, session, codecs)
        peak_small, held_small = _traced(small, base_url, tmp_path / "small", monkeypatch)
        peak_large, held_large = _traced(large, base_url, tmp_path / "large", monkeypatch)
    peak_per_product = (peak_large - peak_small) / (3 * SMALL)
    held_per_product = (held_large - held_small) / (3 * SMALL)
    assert peak_per_product < PEAK_BYTES_PER_PRODUCT, (peak_small, peak_large, peak_per_product)
    assert held_per_product < HELD_BYTES_PER_PRODUCT, (held_small, held_large, held_per_product)


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
