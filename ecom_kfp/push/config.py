"""Configuration of the push stage (built by the CLI and the KFP component alike)."""

from __future__ import annotations

from dataclasses import dataclass

from ecom_kfp.settings import require_given
from ecom_kfp.contracts import registry


@dataclass(frozen=True)
class PushConfig:
    """What to push, where, and under which name.

    Attributes:
        model_uri: A train output (``ModelLayout``).
        evaluation_uri: The evaluate output that blessed it (``EvaluationLayout``).
        registry_uri: MLflow tracking/registry server.
        out_uri: Where ``report.json`` goes.
        serving_uri: Root of the serving location; the model goes to ``<serving_uri>/<name>/<version>/``.
            Empty = register only.
        registered_model_name: Registered model name (also the serving sub-directory).
        alias: Alias a blessed model gets (every pushed version also gets ``challenger``).
        experiment_name: MLflow experiment of the registration run.
        force: Push an unblessed model anyway; it is registered, copied and tagged ``challenger``
            but never gets ``alias`` nor becomes ``latest``.
    """

    model_uri: str
    evaluation_uri: str
    registry_uri: str
    out_uri: str
    serving_uri: str = ""
    registered_model_name: str = "ecom-product-category"
    alias: str = registry.CHAMPION
    experiment_name: str = "ecom-kfp"
    force: bool = False

    def validate(self) -> None:
        """Fail fast on missing flags, naming them."""
        require_given((("--model", self.model_uri), ("--evaluation", self.evaluation_uri),
                       ("--registry-uri", self.registry_uri), ("--out", self.out_uri),
                       ("--registered-model-name", self.registered_model_name), ("--alias", self.alias)))
        if "/" in self.registered_model_name:
            raise ValueError(f"--registered-model-name {self.registered_model_name!r} must not contain '/' "
                             "(it names a serving directory)")
