"""Predict streams: its peak memory does not grow with the catalog.

Each run is a fresh process (peak RSS is per process). Every product of the catalog points at the
same large noisy JPEG (about 0.18 MB, read anew for each product), so an implementation that held
the catalog's images would grow by about 110 MB between the two sizes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.layouts import IngestLayout

SMALL, LARGE = 100, 700
#: What 600 more products may add to the peak: under a third of holding their images.
GROWTH_BOUND_MB = 20

SCRIPT = """
import json, resource, sys
from ecom_kfp.predict import PredictConfig, run
report = run(PredictConfig(products_uri=sys.argv[1], model_uri=sys.argv[2], out_uri=sys.argv[3], batch_size=32,
                           progress=False))
print(json.dumps({"scored": report.scored, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _catalog(root: str, products: int, image: bytes) -> str:
    layout = IngestLayout(root)
    image_uri = layout.image("f" * 64)
    uri.write_bytes(image_uri, image)
    rows = [{"product_id": f"p{i}", "title": "classic shirt", "category_path": ["Apparel", "Topwear"],
             "image_uri": image_uri} for i in range(products)]
    uri.write_parquet(tables.from_rows(rows, tables.PRODUCTS), layout.products)
    return root


def _peak_mb(catalog: str, model: str, out: str) -> tuple[int, float]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, catalog, model, out], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["scored"], result["peak_kb"] / 1024


def test_peak_memory_does_not_grow_with_the_catalog(predict_model, tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG", quality=95)
    image = buffer.getvalue()
    assert len(image) > 120_000
    peaks = {}
    for products in (SMALL, LARGE):
        catalog = _catalog(str(tmp_path / f"catalog-{products}"), products, image)
        scored, peaks[products] = _peak_mb(catalog, predict_model.root, str(tmp_path / f"out-{products}"))
        assert scored == products
    held = (LARGE - SMALL) * len(image) / 2**20
    assert peaks[LARGE] - peaks[SMALL] < GROWTH_BOUND_MB < held / 3, (peaks, held)
    print(f"peak RSS {peaks} MB; holding the images would add {held:.0f} MB")
