"""The last step of ``ecom-kfp run-local`` (``make demo``): score a fresh slice of the demo catalog.

A catalog the model has never seen (same generator, another seed) goes through
:func:`~ecom_kfp.pipelines.scoring.scoring_pipeline` under the same kfp.local runner: ingest, two
prediction shards with the registry's champion (``models:/<name>@champion``), merge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecom_kfp.contracts import registry
from ecom_kfp.demo import DemoCatalogConfig
from ecom_kfp.demo.generate import MIN_PRODUCTS
from ecom_kfp.pipelines.kfp_local import find_run_dir

#: The fresh slice's seed is the training catalog's plus this, so no product repeats.
FRESH_SEED_OFFSET = 1000
#: Fresh products per training product, and prediction shards.
FRESH_SHARE = 0.1
SHARDS = 2


def score_fresh_slice(out: Path, pipeline_root: Path, mlflow_uri: str, registered_model_name: str,
                      training_products: int, seed: int) -> dict[str, Any]:
    """Run the scoring pipeline on a new demo catalog; returns the merged predictions' ``report.json``."""
    from ecom_kfp.demo import generate, serve_directory
    from ecom_kfp.pipelines.scoring import PIPELINE_NAME, scoring_pipeline

    demo = generate(DemoCatalogConfig(out=str(out / "fresh_catalog"), seed=seed + FRESH_SEED_OFFSET,
                                      products=max(MIN_PRODUCTS, int(training_products * FRESH_SHARE)),
                                      progress=False))
    with serve_directory(demo.images) as images_base:
        scoring_pipeline(catalog=demo.catalog, catalog_format="jsonl", images_base=images_base,
                         model_uri=f"models:/{registered_model_name}@{registry.CHAMPION}", registry_uri=mlflow_uri,
                         num_shards=SHARDS, ingest_concurrency=16, allow_private_networks=True)
    merged = find_run_dir(pipeline_root, PIPELINE_NAME) / "merge-predictions-op" / "predictions"
    report = json.loads((merged / "report.json").read_text())
    report["outputs"] = str(merged)
    return report
