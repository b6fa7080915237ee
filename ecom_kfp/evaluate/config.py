"""Configuration of the evaluate stage (built by the CLI and the KFP component alike)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecom_kfp.settings import require_given


@dataclass(frozen=True)
class GateConfig:
    """Blessing thresholds (TFX-style), applied at every taxonomy level.

    Attributes:
        min_accuracy: Absolute floor on top-1 accuracy.
        min_weighted_score: Absolute floor on the business-value-weighted score.
        max_regression: Largest allowed drop against the baseline, as a fraction (0.005 = 0.5
            points), on accuracy and on the weighted score.
    """

    min_accuracy: float = 0.0
    min_weighted_score: float = 0.0
    max_regression: float = 0.005

    def validate(self) -> None:
        for name in ("min_accuracy", "min_weighted_score", "max_regression"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be within [0, 1], got {value}")


@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate, against what, and where to write.

    Attributes:
        model_uri: A train output (``ModelLayout``).
        data_uri: A tfrecord-build output (``DatasetLayout``); its ``test/`` split is scored.
        out_uri: Where the ``EvaluationLayout`` files go.
        business_value_uri: Category -> value table (:mod:`ecom_kfp.contracts.business_value`); empty = records' values, else frequency.
        baseline: Empty = the registry champion when ``mlflow_tracking_uri`` is set; a model
            directory URI (re-evaluated on the same test split); ``models:/NAME@ALIAS`` or
            ``models:/NAME/VERSION``; or a registered model name (its champion).
        mlflow_tracking_uri: MLflow tracking/registry server holding the champion.
        registered_model_name: Registered model whose champion is the default baseline.
        champion_alias: Alias of the default baseline version.
        confidence_threshold: Softmax threshold for accepted-prediction precision and coverage.
        target_precision: Precision the coverage curve finds a threshold for.
        top_k: ``k`` of top-k accuracy.
        confusion_top_n: Classes (by business value) with their own row in confusion matrices.
        confusion_level: Level shown in the Kubeflow confusion matrix; 0 = the deepest level.
        slice_table_uri: Products table (``product_id`` + columns) for extra slices.
        slice_columns: Columns of that table to slice by (e.g. gender, brand).
        slice_floor: Accuracy under which a slice is flagged.
        slice_min_examples: Slices smaller than this are never flagged.
        batch_size: Inference batch size.
        gate: Blessing thresholds.
    """

    model_uri: str
    data_uri: str
    out_uri: str
    business_value_uri: str = ""
    baseline: str = ""
    mlflow_tracking_uri: str = ""
    registered_model_name: str = "ecom-product-category"
    champion_alias: str = "champion"
    confidence_threshold: float = 0.5
    target_precision: float = 0.95
    top_k: int = 5
    confusion_top_n: int = 50
    confusion_level: int = 0
    slice_table_uri: str = ""
    slice_columns: tuple[str, ...] = ()
    slice_floor: float = 0.5
    slice_min_examples: int = 10
    batch_size: int = 64
    gate: GateConfig = field(default_factory=GateConfig)

    def validate(self) -> None:
        """Fail fast on values no evaluation can run with, naming the flag."""
        require_given((("--model", self.model_uri), ("--data", self.data_uri), ("--out", self.out_uri)))
        for flag, value in (("--confidence-threshold", self.confidence_threshold),
                            ("--target-precision", self.target_precision), ("--slice-floor", self.slice_floor)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{flag} must be within [0, 1], got {value}")
        for flag, value in (("--top-k", self.top_k), ("--confusion-top-n", self.confusion_top_n),
                            ("--batch-size", self.batch_size)):
            if value < 1:
                raise ValueError(f"{flag} must be >= 1, got {value}")
        if self.confusion_level < 0:
            raise ValueError(f"--confusion-level must be >= 0, got {self.confusion_level}")
        if self.slice_columns and not self.slice_table_uri:
            raise ValueError(f"--slice-columns {','.join(self.slice_columns)} needs --slice-table")
        self.gate.validate()
