"""ecom-kfp: reusable Kubeflow Pipelines v2 components for e-commerce product classification."""

__version__ = "0.1.0"
