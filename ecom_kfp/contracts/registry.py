"""What push writes into the MLflow model registry and evaluate reads back (tag names, artifact paths).

A registered model version is created from an MLflow run that holds two artifact directories:

- ``model/``: an MLflow Model (a ``pyfunc`` logged from code, :mod:`ecom_kfp.push.pyfunc_model`) whose
  ``artifacts/model/`` (:data:`MODEL_LAYOUT_DIR`) is the model in
  :class:`~ecom_kfp.contracts.layouts.ModelLayout` form (``saved_model/``, ``labels/``,
  ``dataset_manifest.json``, ``training.json``, ``digests.json``), so it loads with ``mlflow.pyfunc.load_model`` and,
  downloaded, is verified and evaluated like any model dir (:func:`layout_root`). The confidence
  thresholds evaluate chose sit beside it, ``artifacts/thresholds.json`` (:data:`THRESHOLDS_PATH`):
  they are not part of the trained model, whose directory holds exactly what its digests name.
- ``evaluation/``: the evaluation that blessed it (``metrics.json``, ``blessing.json``, ``report.html``).

Model version tags (all strings):

- :data:`CONTENT_SHA256`: hash of the serving payload; push finds an existing version by it, so
  re-running a push never creates a second version of the same model.
- :data:`TEST_FINGERPRINT`: fingerprint of the test split the metrics were computed on; evaluate
  reuses the tagged metrics of a champion only when it equals the current test split's.
- ``metric.level_<k>.<name>``: headline metrics per level (:func:`metric_tag`).
- :data:`BLESSED`, :data:`SERVING_URI`, :data:`SERVING_STATUS`, :data:`PACKAGE_VERSION`,
  :data:`GIT_VERSION`, :data:`DATASET_MANIFEST_SHA256`, :data:`MODEL_URI`.
"""

from __future__ import annotations

import os

MODEL_ARTIFACT = "model"
#: Where the ModelLayout is inside the ``model/`` MLflow Model.
MODEL_LAYOUT_DIR = "artifacts/model"
#: Where evaluate's thresholds.json is inside the ``model/`` MLflow Model (absent when it had none).
THRESHOLDS_PATH = "artifacts/thresholds.json"
EVALUATION_ARTIFACT = "evaluation"

CONTENT_SHA256 = "ecom_kfp.content_sha256"
TEST_FINGERPRINT = "ecom_kfp.test_fingerprint"
BLESSED = "ecom_kfp.blessed"
SERVING_URI = "ecom_kfp.serving_uri"
SERVING_STATUS = "ecom_kfp.serving_status"
PACKAGE_VERSION = "ecom_kfp.package_version"
GIT_VERSION = "ecom_kfp.git_version"
DATASET_MANIFEST_SHA256 = "ecom_kfp.dataset_manifest_sha256"
MODEL_URI = "ecom_kfp.model_uri"

#: :data:`SERVING_STATUS` values: ``pending`` until the serving copy is verified.
SERVING_PENDING = "pending"
SERVING_VERIFIED = "verified"

#: Aliases push sets: every pushed version is the challenger; blessed ones become champion.
CHALLENGER = "challenger"
CHAMPION = "champion"

METRIC_PREFIX = "metric."


def metric_tag(level: int, name: str) -> str:
    """Tag key of headline metric ``name`` at ``level`` (1-based)."""
    return f"{METRIC_PREFIX}level_{level}.{name}"


def parse_metric_tags(tags: dict[str, str]) -> dict[int, dict[str, float]]:
    """Inverse of :func:`metric_tag`: ``{level: {name: value}}`` from a version's tags."""
    out: dict[int, dict[str, float]] = {}
    for key, value in tags.items():
        if not key.startswith(METRIC_PREFIX + "level_"):
            continue
        level_part, _, name = key[len(METRIC_PREFIX) + len("level_"):].partition(".")
        if level_part.isdigit() and name:
            out.setdefault(int(level_part), {})[name] = float(value)
    return out


def thresholds_file(model_artifact_dir: str) -> str:
    """The thresholds file inside a downloaded ``model/`` artifact, or "" when it has none."""
    path = os.path.join(model_artifact_dir, *THRESHOLDS_PATH.split("/"))
    return path if os.path.isfile(path) else ""


def layout_root(model_artifact_dir: str) -> str:
    """The ModelLayout root inside a downloaded ``model/`` artifact (itself, for versions pushed as plain files)."""
    nested = os.path.join(model_artifact_dir, *MODEL_LAYOUT_DIR.split("/"))
    return nested if os.path.isdir(nested) else model_artifact_dir
