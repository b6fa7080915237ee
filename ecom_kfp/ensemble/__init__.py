"""Average several trained models into one served model.

``run(EnsembleConfig(...)) -> EnsembleReport`` (in :mod:`ecom_kfp.ensemble.stage`).
"""

from ecom_kfp.lazy import lazy_exports

__all__ = ["EnsembleConfig", "EnsembleReport", "run"]

# Imported on first use: the config is read by the CLI and the component without TensorFlow.
__getattr__ = lazy_exports(__name__, {"EnsembleConfig": "ecom_kfp.ensemble.config",
                                      "EnsembleReport": "ecom_kfp.ensemble.stage", "run": "ecom_kfp.ensemble.stage"})
