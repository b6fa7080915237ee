"""Push a blessed model: register it in the MLflow model registry and publish it to a serving path.

Entry point: :func:`ecom_kfp.push.stage.run` with a :class:`ecom_kfp.push.config.PushConfig`.
"""
