"""The last step of ``ecom-kfp run-local`` (``make demo``): score a fresh slice of the demo catalog.

A catalog the model has never seen (same generator, another seed) goes through
:func:`~ecom_kfp.pipelines.scoring.scoring_pipeline` under the same kfp.local runner: ingest, two
prediction shards with the registry's champion (``models:/<name>@champion``), merge. The slice's
planted wrong labels (``truth.json``) are then looked up in the predictions: how many the
``suspect_label`` flag caught.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecom_kfp import uri
from ecom_kfp.contracts import registry
from ecom_kfp.contracts.layouts import PredictionLayout
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
    """Run the scoring pipeline on a new demo catalog.

    Returns:
        The merged predictions' ``report.json``, with ``outputs`` (their directory) and
        ``planted_label_errors`` (:func:`planted_label_errors`).
    """
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
    report["planted_label_errors"] = planted_label_errors(demo.truth, str(merged))
    return report


def planted_label_errors(truth_uri: str, predictions_dir: str) -> dict[str, int]:
    """How many of a demo catalog's planted wrong labels were scored, and flagged ``suspect_label``.

    Returns:
        ``planted`` (in truth.json), ``scored`` (of those, with a prediction), ``flagged`` (of those,
        suspect) and ``suspects`` (every product flagged, planted or not).
    """
    import pyarrow.parquet as pq

    planted = set(uri.read_json(truth_uri)["wrong_label"])
    with uri.local_copy(PredictionLayout(predictions_dir).predictions) as local:
        rows = pq.read_table(local, columns=["product_id", "suspect_label"]).to_pylist()
    suspects = {r["product_id"] for r in rows if r["suspect_label"]}
    scored = planted & {r["product_id"] for r in rows}
    return {"planted": len(planted), "scored": len(scored), "flagged": len(scored & suspects),
            "suspects": len(suspects)}
