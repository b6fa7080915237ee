"""Dedupe holds arrays per product, not Python objects (issue 24).

The stage runs (hashing in this process) on ingest outputs of N and 4N products, four products per
picture and title (so three in four are removed as byte-identical copies, and each group gives the
title rule six candidate pairs), each with a catalog source row of ~400 bytes; image jobs, source
rows and hashing chunks are made 64 at a time, so that N already fills them. Python's own
allocations are traced (``tracemalloc``) and the growth of the peak from N to 4N is divided by the
3N extra products. Measured: ~500 bytes per extra product with the stage that makes image jobs
lazily, checks candidate pairs in blocks and turns only the rows a report shows into Python
objects (the hash arrays, twice while the chunks' results are joined); 930-960 with the stage that
kept an image job per product and checked all pairs at once (it fails this test).
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from ecom_kfp.dedupe import stage
from ecom_kfp.dedupe.near_search import near_value_pairs
from ecom_kfp.dedupe.phash import hamming
from ecom_kfp.testing.memory import traced_peak
from tests.dedupe.helpers import dedupe, jpeg, picture, write_layout

pytestmark = pytest.mark.slow

SMALL = 400
#: Products per picture: each group has COPIES * (COPIES - 1) / 2 candidate pairs of the title rule.
COPIES = 4
#: Image jobs and source rows made at a time, and images per hashing chunk: small, so that N already fills them.
WINDOW = 64
#: Bytes of traced peak memory one more product may add (see the module docstring).
BYTES_PER_PRODUCT = 700


def _layout(root: Path, products: int) -> Path:
    """``products`` products, :data:`COPIES` per picture and title, with ~400-byte source rows."""
    images = [jpeg(picture(seed)) for seed in range(products // COPIES)]
    return write_layout(root, [
        {"product_id": f"P{i:06d}", "title": f"Cotton Crew Neck T-Shirt Style {i // COPIES}",
         "image": images[i // COPIES],
         "source": json.dumps({"product_id": f"P{i:06d}", "colour": "Navy Blue", "notes": "x" * 300})}
        for i in range(products)])


def _peak(products_dir: Path, out: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        _, duplicates, rejects, report = dedupe(products_dir, out, chunk_size=WINDOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert COPIES * len(duplicates) == (COPIES - 1) * report["input"] and not rejects, report["message"]
    return peak


def test_peak_memory_per_product_is_arrays_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "ROW_BATCH", WINDOW)
    small, large = _layout(tmp_path / "small", SMALL), _layout(tmp_path / "large", 4 * SMALL)
    _peak(small, tmp_path / "warm-up")  # first-use allocations (imports, codecs, caches)
    peak_small = _peak(small, tmp_path / "out-small")
    peak_large = _peak(large, tmp_path / "out-large")
    per_product = (peak_large - peak_small) / (3 * SMALL)
    assert per_product < BYTES_PER_PRODUCT, (peak_small, peak_large, per_product)


def test_near_search_filters_candidate_pairs_block_by_block() -> None:
    """Low-entropy hashes (drawn or near-blank pictures: 200k demo photos held 2.6 GB here) share most
    index blocks, so the candidate pairs of one block combination number millions while few are
    within the radius. 3,000 hashes with equal upper halves: ~220 MB traced when a combination's
    candidates were gathered before the distance filter, ~3 MB when each offset's block is filtered
    as it is made. The pairs found are the brute-force ones."""
    rng = np.random.default_rng(0)
    values = np.unique((np.uint64(0xABCD1234) << np.uint64(32)) | rng.integers(0, 2**32, 3000, dtype=np.uint64))
    pairs, peak = traced_peak(lambda: near_value_pairs(values, 6))
    assert peak < 30e6
    left, right = np.triu_indices(len(values), k=1)
    close = hamming(values[left], values[right]) <= 6
    assert np.array_equal(pairs.left, left[close]) and np.array_equal(pairs.right, right[close])
