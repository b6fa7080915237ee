"""Find the baseline a candidate is compared with, and its metrics on the candidate's test split.

By default the baseline is the current champion in the MLflow registry (the version with alias
``champion`` of the registered model). Its metrics come from one of two places, chosen so the
comparison is always on the same test split:

- **registry tags**, when the version's :data:`~ecom_kfp.contracts.registry.TEST_FINGERPRINT` tag
  equals the fingerprint of the test split being evaluated: push recorded metrics computed on the
  very same examples and labels, and inference is deterministic, so re-running it would only
  reproduce them;
- **re-evaluation** otherwise (the champion was scored on another split, or predates the tags):
  its ``model/`` artifact is downloaded and scored on this test split now.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.contracts import registry
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.gate import Baseline
from ecom_kfp.scratch import scratch_dir

REGISTRY_TAGS = "registry tags"
RE_EVALUATED = "re-evaluated"
MODELS_SCHEME = "models:/"

#: ``reevaluate(model, private)`` scores a model directory on the candidate's test split: level ->
#: metric -> value. ``private``: the directory is this process's own download, not to be copied again.
Reevaluate = Callable[[str, bool], dict[int, dict[str, float]]]


@dataclass(frozen=True)
class RegistryRef:
    """A registered model version named by alias or by number."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str, default_alias: str) -> RegistryRef:
        """``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, or a bare ``NAME`` (its ``default_alias``)."""
        body = text[len(MODELS_SCHEME):] if text.startswith(MODELS_SCHEME) else text
        if "@" in body:
            name, alias = body.split("@", 1)
            return cls(name, alias=alias)
        if "/" in body:
            name, version = body.split("/", 1)
            return cls(name, version=version)
        return cls(body, alias=default_alias)

    def __str__(self) -> str:
        return f"{MODELS_SCHEME}{self.name}@{self.alias}" if self.alias else f"{MODELS_SCHEME}{self.name}/{self.version}"


def registry_client(tracking_uri: str):
    """An ``MlflowClient`` whose tracking server is also the model registry."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def find_version(client, ref: RegistryRef):
    """The ``ModelVersion`` ``ref`` names, or None when the model, alias or version does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        if ref.alias:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        return client.get_model_version(ref.name, ref.version)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _from_registry(client, tracking_uri: str, ref: RegistryRef, fingerprint: str, reevaluate: Reevaluate) -> Baseline:
    version = find_version(client, ref)
    if version is None:
        raise LookupError(str(ref))
    description = f"{ref} (version {version.version})"
    tagged = registry.parse_metric_tags(version.tags)
    if tagged and version.tags.get(registry.TEST_FINGERPRINT) == fingerprint:
        return Baseline(description, REGISTRY_TAGS, tagged, version.version)
    import mlflow.artifacts

    with scratch_dir("baseline") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=tmp, tracking_uri=tracking_uri)
        model = registry.layout_root(local)  # versions pushed as MLflow Models hold it under artifacts/
        # Only a download into this scratch directory is private; a store could hand back its own path.
        private = os.path.commonpath([os.path.realpath(tmp), os.path.realpath(model)]) == os.path.realpath(tmp)
        return Baseline(description, RE_EVALUATED, reevaluate(model, private), version.version)


def resolve_baseline(config: EvaluateConfig, fingerprint: str, reevaluate: Reevaluate) -> tuple[Baseline | None, str]:
    """The baseline of ``config``, or None and why there is none.

    Raises:
        ValueError: an explicitly requested ``--baseline`` cannot be found.
    """
    tracking_uri = config.mlflow_tracking_uri
    if not config.baseline:
        if not tracking_uri:
            return None, "no --baseline and no --mlflow-tracking-uri"
        ref = RegistryRef(config.registered_model_name, alias=config.champion_alias)
        try:
            return _from_registry(registry_client(tracking_uri), tracking_uri, ref, fingerprint, reevaluate), ""
        except LookupError:
            return None, f"no {ref} in the registry at {tracking_uri}"
    if not config.baseline.startswith(MODELS_SCHEME) and uri.exists(uri.join(config.baseline, "saved_model")):
        return Baseline(config.baseline, RE_EVALUATED, reevaluate(config.baseline, False)), ""
    if not tracking_uri:
        raise ValueError(f"--baseline {config.baseline} is not a model directory; a registered model "
                         "needs --mlflow-tracking-uri")
    ref = RegistryRef.parse(config.baseline, config.champion_alias)
    try:
        return _from_registry(registry_client(tracking_uri), tracking_uri, ref, fingerprint, reevaluate), ""
    except LookupError as err:
        raise ValueError(f"--baseline {config.baseline}: {err} not found in the registry at {tracking_uri}") from err
