"""Configuration of the evaluate stage, shared by the CLI and the KFP component."""

from __future__ import annotations

from dataclasses import dataclass

from ecom_kfp.settings import require, require_given, setting


@dataclass(frozen=True)
class GateConfig:
    """Blessing thresholds (TFX-style), applied at every taxonomy level."""

    min_accuracy: float = setting(0.0, metavar="FRACTION", help="gate: absolute floor on accuracy at every level")
    min_weighted_score: float = setting(
        0.0, metavar="FRACTION", help="gate: absolute floor on the business-value-weighted score at every level")
    max_regression: float = setting(
        0.005, metavar="FRACTION",
        help="gate: largest allowed drop vs the baseline on accuracy and weighted score (0.005 = 0.5 points)")

    def validate(self) -> None:
        """Fail fast on a threshold outside [0, 1], naming the flag."""
        require([(0.0 <= getattr(self, name) <= 1.0, f"--{name.replace('_', '-')}", getattr(self, name),
                  "must be within [0, 1]") for name in ("min_accuracy", "min_weighted_score", "max_regression")])


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``ecom-kfp evaluate`` and ``evaluate_op`` run on; each field's help is its documentation."""

    model_uri: str = setting(flag="--model", metavar="URI",
                             help="model directory URI (a train output: saved_model/, labels/)")
    data_uri: str = setting(flag="--data", metavar="URI",
                            help="dataset directory URI (a tfrecord-build output); test/ is scored, val/ calibrates")
    out_uri: str = setting(flag="--out", metavar="URI",
                           help="output directory URI (metrics.json, blessing.json, thresholds.json, report.html, ...)")
    business_value_uri: str = setting(
        "", flag="--business-value", metavar="URI",
        help="category_path,business_value table (CSV, JSON or Parquet; the one ingest read); empty = the "
             "records' business_value, else category frequency")
    baseline: str = setting(
        "", metavar="MODEL",
        help="model directory URI, models:/NAME@ALIAS, models:/NAME/VERSION or a registered model name; empty = "
             "the registry champion when --mlflow-tracking-uri is set")
    mlflow_tracking_uri: str = setting("", metavar="URI", help="MLflow tracking/registry server with the champion")
    registered_model_name: str = setting("ecom-product-category",
                                         help="registered model whose champion is the default baseline")
    champion_alias: str = setting("champion", help="registry alias of the default baseline")
    confidence_threshold: float = setting(
        0.5, metavar="P", help="calibrated confidence threshold for accepted-prediction precision and coverage")
    target_precision: float = setting(
        0.95, metavar="P",
        help="precision the published per-level threshold (thresholds.json, served with the model) must reach "
             "on the test split")
    calibrate: bool = setting(True, help="fit a softmax temperature per level on the validation split")
    tail_train_examples: int = setting(
        5, metavar="N", help="classes with fewer training examples than this form the tail slice")
    suspect_labels: bool = setting(True, help="rank likely label errors of the test split with cleanlab")
    top_k: int = setting(5, metavar="K", help="k of top-k accuracy")
    confusion_top_n: int = setting(50, metavar="N",
                                   help="classes (by business value) with their own row in the confusion matrices")
    confusion_level: int = setting(0, metavar="LEVEL",
                                   help="level shown as the Kubeflow confusion matrix (0 = deepest)")
    slice_table_uri: str = setting("", flag="--slice-table", metavar="URI",
                                   help="products table (Parquet/CSV with product_id) supplying --slice-columns")
    slice_columns: list[str] = setting(factory=list, metavar="COLUMN,...",
                                       help="columns of the slice table to slice by, e.g. gender,brand")
    slice_floor: float = setting(0.5, metavar="FRACTION", help="accuracy under which a slice is flagged")
    slice_min_examples: int = setting(10, metavar="N", help="slices smaller than this are never flagged")
    batch_size: int = setting(64, metavar="N", help="inference batch size")
    max_test_examples: int = setting(
        0, metavar="N",
        help="score about the first N test records (whole batches; the build writes them in a pseudo-random order, "
             "so they are a fair sample) and judge the model, its thresholds and the baseline on those; bounds "
             "evaluate's memory and time on a large catalog (docs/scaling.md); 0 = the whole test split")
    gate: GateConfig = setting(factory=GateConfig, help="blessing thresholds")

    def validate(self) -> None:
        """Fail fast on values no evaluation can run with, naming the flag and the value.

        Raises:
            ConfigError: a setting is missing or out of range.
        """
        require_given((("--model", self.model_uri), ("--data", self.data_uri), ("--out", self.out_uri)))
        require([
            *((0.0 <= value <= 1.0, flag, value, "must be within [0, 1]")
              for flag, value in (("--confidence-threshold", self.confidence_threshold),
                                  ("--target-precision", self.target_precision), ("--slice-floor", self.slice_floor))),
            *((value >= 1, flag, value, "must be >= 1")
              for flag, value in (("--top-k", self.top_k), ("--confusion-top-n", self.confusion_top_n),
                                  ("--batch-size", self.batch_size),
                                  ("--tail-train-examples", self.tail_train_examples))),
            (self.confusion_level >= 0, "--confusion-level", self.confusion_level, "must be >= 0"),
            (self.max_test_examples >= 0, "--max-test-examples", self.max_test_examples, "must be >= 0 (0 = all)"),
            (not self.slice_columns or bool(self.slice_table_uri), "--slice-columns", ",".join(self.slice_columns),
             "needs --slice-table"),
        ])
        self.gate.validate()
