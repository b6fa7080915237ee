"""Configuration of the push stage, shared by the CLI and the KFP component."""

from __future__ import annotations

from dataclasses import dataclass

from ecom_kfp.contracts import registry
from ecom_kfp.settings import require, require_given, setting


@dataclass(frozen=True)
class PushConfig:
    """What ``ecom-kfp push`` and ``push_op`` push, where, and under which name; each field's help is its doc."""

    model_uri: str = setting(flag="--model", metavar="URI",
                             help="model directory URI (a train output, with digests.json); its content must be "
                                  "the one the evaluation scored")
    evaluation_uri: str = setting(flag="--evaluation", metavar="URI",
                                  help="evaluate output URI that blessed the model (blessing.json with the model's "
                                       "content digest, metrics.json)")
    registry_uri: str = setting(metavar="URI",
                                help="MLflow tracking/registry server URI (http(s)://..., or sqlite:///PATH in an "
                                     "existing directory)")
    out_uri: str = setting(flag="--out", metavar="URI", help="output directory URI for report.json")
    serving_uri: str = setting("", metavar="URI",
                               help="serving root (local or gs://); the model goes to <serving-uri>/<name>/<version>/ "
                                    "(empty = register only)")
    registered_model_name: str = setting("ecom-product-category", metavar="NAME",
                                         help="registered model name (also the serving sub-directory)")
    alias: str = setting(registry.CHAMPION, metavar="ALIAS",
                         help="alias a blessed model gets (every pushed version is also 'challenger')")
    experiment_name: str = setting("ecom-kfp", metavar="NAME", help="MLflow experiment of the registration run")
    force: bool = setting(False, help="push an unblessed model anyway (registered and copied as challenger; never "
                                      "champion or latest)")

    def validate(self) -> None:
        """Fail fast on missing or bad flags, naming them.

        Raises:
            ConfigError: a flag is missing or has a value push cannot use.
        """
        require_given((("--model", self.model_uri), ("--evaluation", self.evaluation_uri),
                       ("--registry-uri", self.registry_uri), ("--out", self.out_uri),
                       ("--registered-model-name", self.registered_model_name), ("--alias", self.alias)))
        require([("/" not in self.registered_model_name, "--registered-model-name", self.registered_model_name,
                  "must not contain '/' (it names a serving directory)")])
