"""Register a model version in the MLflow model registry (see :mod:`ecom_kfp.contracts.registry`)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

from ecom_kfp import __version__, uri
from ecom_kfp.contracts import registry
from ecom_kfp.contracts.layouts import EvaluationLayout, ModelLayout
from ecom_kfp.push import mlflow_model
from ecom_kfp.scratch import scratch_dir
from ecom_kfp.settings import require
from ecom_kfp.train.tracking import experiment_id


def git_version() -> str:
    """``git describe`` of this package's checkout, or ``unknown`` when installed without one."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


SQLITE = "sqlite:///"


def check_registry_uri(registry_uri: str) -> None:
    """Refuse a sqlite registry whose directory does not exist: MLflow would create a new, empty
    registry there, in which the pushed model silently becomes the first champion.

    Raises:
        ConfigError: naming ``--registry-uri``.
    """
    if not registry_uri.startswith(SQLITE):
        return
    directory = os.path.dirname(registry_uri[len(SQLITE):])
    require([(not directory or os.path.isdir(directory), "--registry-uri", registry_uri,
              f"the sqlite database's directory {directory} does not exist (a typo would start a new, empty "
              "registry)")])


def find_version_by_hash(client, name: str, content_sha256: str):
    """The oldest version of ``name`` tagged with ``content_sha256``, or None (also when ``name`` is new)."""
    found = client.search_model_versions(
        f"name = '{name}' and tags.`{registry.CONTENT_SHA256}` = '{content_sha256}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def version_tags(content_sha256: str, model: ModelLayout, metrics: dict, blessed: bool) -> dict[str, str]:
    """Tags of a new version: provenance, test fingerprint and headline metrics per level."""
    from ecom_kfp.evaluate.metrics import HEADLINE

    tags = {
        registry.CONTENT_SHA256: content_sha256,
        registry.TEST_FINGERPRINT: metrics["test_fingerprint"],
        registry.BLESSED: str(bool(blessed)).lower(),
        registry.PACKAGE_VERSION: __version__,
        registry.GIT_VERSION: git_version(),
        registry.MODEL_URI: model.root,
        registry.SERVING_STATUS: registry.SERVING_PENDING,
    }
    if uri.exists(model.manifest):
        tags[registry.DATASET_MANIFEST_SHA256] = hashlib.sha256(uri.read_bytes(model.manifest)).hexdigest()
    for level, values in metrics["levels"].items():
        for name in HEADLINE:
            tags[registry.metric_tag(int(level), name)] = repr(float(values[name]))
    return tags


def register(client, *, name: str, experiment: str, model: ModelLayout, evaluation: EvaluationLayout,
             tags: dict[str, str]):
    """Log the model (as an MLflow Model) and its evaluation as a run's artifacts; create a model version from it."""
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    run = client.create_run(experiment_id(client, experiment), run_name=f"push-{tags[registry.CONTENT_SHA256][:12]}",
                            tags={k: v for k, v in tags.items() if k != registry.SERVING_STATUS})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k[len(registry.METRIC_PREFIX):], float(v), now, 0)
                                      for k, v in tags.items() if k.startswith(registry.METRIC_PREFIX)])
    with uri.local_copy(model.root) as local_model, uri.local_copy(evaluation.root) as local_evaluation, \
            scratch_dir("push") as tmp:
        thresholds = EvaluationLayout(local_evaluation).thresholds
        saved = mlflow_model.save(local_model, str(Path(tmp, "model")),
                                  thresholds=thresholds if Path(thresholds).exists() else "")
        client.log_artifacts(run_id, saved, registry.MODEL_ARTIFACT)
        client.log_artifacts(run_id, local_evaluation, registry.EVALUATION_ARTIFACT)
    client.set_terminated(run_id)
    try:
        client.create_registered_model(name, description="Product-category classifier (ecom-kfp).")
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.create_model_version(name, source=f"{run.info.artifact_uri}/{registry.MODEL_ARTIFACT}",
                                       run_id=run_id, tags=tags)
