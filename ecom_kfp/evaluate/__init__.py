"""Evaluate a trained model on the test split: metrics, business-value-weighted score, plots, blessing.

Entry point: :func:`ecom_kfp.evaluate.stage.run` with an :class:`ecom_kfp.evaluate.config.EvaluateConfig`.
"""
