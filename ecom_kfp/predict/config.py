"""Configuration of the batch-prediction stage, shared by the CLI and the KFP component."""

from __future__ import annotations

from dataclasses import dataclass

from ecom_kfp.evaluate.baseline import MODELS_SCHEME
from ecom_kfp.settings import require, setting


@dataclass
class PredictConfig:
    """What ``ecom-kfp predict`` and ``batch_predict_op`` run on; each field's help is its documentation."""

    products_uri: str = setting(flag="--products", metavar="URI",
                                help="ingest (or dedupe) output directory or gs:// prefix holding products.parquet")
    model_uri: str = setting(flag="--model", metavar="URI_OR_REF",
                             help="a train output, a pushed serving version (<serving>/<name>/<version>), or a "
                                  "registered model: models:/NAME@ALIAS or models:/NAME/VERSION")
    out_uri: str = setting(flag="--out", metavar="URI",
                           help="output directory or gs:// prefix: predictions.parquet, rejects.parquet, "
                                "predictions.html, samples.json (the page's products), report.json")
    registry_uri: str = setting("", metavar="URI",
                                help="MLflow tracking/registry server that resolves a models:/ reference")
    top_k: int = setting(3, metavar="K", help="classes and probabilities kept per taxonomy level")
    target_precision: float = setting(
        0.0, metavar="P",
        help="accept predictions at the threshold reaching this precision on the model's precision curve "
             "(thresholds.json); 0 = the threshold evaluate chose")
    fallback_threshold: float = setting(
        0.5, metavar="P", help="confidence threshold for a model that carries no thresholds.json")
    batch_size: int = setting(128, metavar="N", help="products per call of the serving signature")
    shard_index: int = setting(0, metavar="I", help="score only the products of this shard (0-based)")
    num_shards: int = setting(1, metavar="N", help="shards the products are split into, by a hash of product_id")
    html_samples: int = setting(6, metavar="N",
                                help="sample products per predicted class, and disagreements x 4, in predictions.html")
    html_classes: int = setting(60, metavar="N",
                                help="predicted classes shown with samples in predictions.html, the most predicted "
                                     "first (every class's count is in report.json); 0 = all")
    progress: bool = setting(True, flag="--no-progress", help="show progress bars")

    @property
    def is_registry_reference(self) -> bool:
        return self.model_uri.startswith(MODELS_SCHEME)

    def validate(self) -> None:
        """Fail fast on bad settings, naming the CLI flag and the value.

        Raises:
            ConfigError: a setting is missing or out of range.
        """
        require([
            (bool(self.products_uri), "--products", self.products_uri, "must be given"),
            (bool(self.model_uri), "--model", self.model_uri, "must be given"),
            (bool(self.out_uri), "--out", self.out_uri, "must be given"),
            (self.out_uri.rstrip("/") != self.products_uri.rstrip("/"), "--out", self.out_uri,
             "must differ from --products (it would overwrite the input rejects.parquet)"),
            (bool(self.registry_uri) or not self.is_registry_reference, "--registry-uri", self.registry_uri,
             f"must be given to resolve --model {self.model_uri}"),
            (self.top_k >= 1, "--top-k", self.top_k, "must be >= 1"),
            (0.0 <= self.target_precision <= 1.0, "--target-precision", self.target_precision,
             "must be within [0, 1] (0 = the model's own threshold)"),
            (0.0 <= self.fallback_threshold <= 1.0, "--fallback-threshold", self.fallback_threshold,
             "must be within [0, 1]"),
            (self.batch_size >= 1, "--batch-size", self.batch_size, "must be >= 1"),
            (self.num_shards >= 1, "--num-shards", self.num_shards, "must be >= 1"),
            (0 <= self.shard_index < max(self.num_shards, 1), "--shard-index", self.shard_index,
             f"must be within [0, --num-shards={self.num_shards})"),
            (self.html_samples >= 0, "--html-samples", self.html_samples, "must be >= 0"),
            (self.html_classes >= 0, "--html-classes", self.html_classes, "must be >= 0 (0 = all)"),
        ])
