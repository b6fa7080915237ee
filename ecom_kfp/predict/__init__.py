"""Batch prediction: score a products table with a trained, pushed or registered model."""

from ecom_kfp.predict.config import PredictConfig
from ecom_kfp.predict.stage import PredictReport, run

__all__ = ["PredictConfig", "PredictReport", "run"]
