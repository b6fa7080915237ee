"""Push a blessed model: register it in the MLflow model registry and publish it to a serving path.

``run(PushConfig(...)) -> PushReport`` (in :mod:`ecom_kfp.push.stage`).
"""

from ecom_kfp.lazy import lazy_exports

__all__ = ["PushConfig", "PushReport", "run"]

# Imported on first use: the MLflow pyfunc (push/pyfunc_model.py) imports push.mlflow_model alone,
# and should not pay for the registry client and TensorFlow the stage brings in.
__getattr__ = lazy_exports(__name__, {"PushConfig": "ecom_kfp.push.config",
                                      "PushReport": "ecom_kfp.push.stage", "run": "ecom_kfp.push.stage"})
