"""Push a blessed model: register it in the MLflow model registry and publish it to a serving path.

``run(PushConfig(...)) -> PushReport`` (in :mod:`ecom_kfp.push.stage`).
"""

__all__ = ["PushConfig", "PushReport", "run"]


def __getattr__(name: str):
    # Imported on first use: the MLflow pyfunc (push/pyfunc_model.py) imports push.mlflow_model alone,
    # and should not pay for the registry client and TensorFlow the stage brings in.
    if name == "PushConfig":
        from ecom_kfp.push.config import PushConfig

        return PushConfig
    if name in __all__:
        from ecom_kfp.push import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
