"""Evaluate a trained model on the test split: metrics, calibration, thresholds, rare classes, suspect labels,
business-value-weighted score, plots, blessing.

Entry point: :func:`ecom_kfp.evaluate.stage.run` with an :class:`ecom_kfp.evaluate.config.EvaluateConfig`.
"""

from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.stage import EvaluateReport, run

__all__ = ["EvaluateConfig", "EvaluateReport", "run"]
