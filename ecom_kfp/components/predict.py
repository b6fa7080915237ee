"""KFP components of batch prediction: ``batch_predict_op`` (one shard) and ``merge_predictions_op``.

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""


from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.predict.config import PredictConfig
from ecom_kfp.settings import component_doc


@cpu_component
@component_doc(PredictConfig, "Score (one shard of) a products table with a trained, pushed or registered model.",
               products="Ingest or dedupe output (IngestLayout directory).",
               predictions="PredictionLayout directory: predictions.parquet, rejects.parquet, report.json.",
               page="HTML page: sample predictions with images per predicted class, most confident "
                    "disagreements with the catalog.",
               metrics="Counts, shares accepted and suspect, drift, products/s.")
def batch_predict_op(products: Input[Dataset], predictions: Output[Dataset], page: Output[HTML],
                     metrics: Output[Metrics], model_uri: str, registry_uri: str = '', top_k: int = 3,
                     target_precision: float = 0.0, fallback_threshold: float = 0.5, batch_size: int = 128,
                     shard_index: int = 0, num_shards: int = 1, html_samples: int = 6, html_classes: int = 60):
    import shutil

    from ecom_kfp.contracts.layouts import PredictionLayout
    from ecom_kfp.predict import PredictConfig, run
    from ecom_kfp.report import scalar_metrics

    report = run(PredictConfig(products_uri=products.path, model_uri=model_uri, out_uri=predictions.path,
                               registry_uri=registry_uri, top_k=top_k, target_precision=target_precision,
                               fallback_threshold=fallback_threshold, batch_size=batch_size,
                               shard_index=shard_index, num_shards=num_shards, html_samples=html_samples,
                               html_classes=html_classes, progress=False))
    shutil.copyfile(PredictionLayout(predictions.path).html, page.path)
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)


@cpu_component
def merge_predictions_op(shards: Input[list[Dataset]], predictions: Output[Dataset], page: Output[HTML],
                         metrics: Output[Metrics], model_uri: str, registry_uri: str = ''):
    """Merge the batch_predict_op outputs of all shards into one prediction layout.

    Args:
        shards: The batch_predict_op outputs of every shard (dsl.Collected).
        predictions: Output merged PredictionLayout directory.
        page: HTML page of the merged run: its figures, the most confident disagreements with the
            catalog over all shards, samples per predicted class, links to each shard's page.
        metrics: Summed counts, shares, drift over all shards, products/s of the fan-out.
        model_uri: The model the shards used (its training counts give the drift).
        registry_uri: MLflow registry that resolves a models:/ reference.
    """
    import shutil

    from ecom_kfp.contracts.layouts import PredictionLayout
    from ecom_kfp.predict.merge import merge_predictions
    from ecom_kfp.report import scalar_metrics

    report = merge_predictions([shard.path for shard in shards], predictions.path, model_uri, registry_uri)
    shutil.copyfile(PredictionLayout(predictions.path).html, page.path)
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)
