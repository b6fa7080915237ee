"""Helpers of the manifest tests: render kustomizations and validate what they produce offline.

``kubectl kustomize`` (kubectl 1.32, kustomize 5.5; preinstalled on these machines and in CI) renders
each kustomization; core objects are validated with kubernetes-validate's Kubernetes 1.32 strict
schemas, MPIJobs with the repository's own v2beta1 schema (manifests/schemas) plus each pod
template as a core/v1 PodTemplate. There is no API server here, so admission-time behaviour
(defaulting, the MPI Operator's controller) is not exercised.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
MPIJOB_SCHEMA = MANIFESTS / "schemas" / "mpijob-v2beta1.json"
KUBERNETES_VERSION = "1.32"
NAMESPACE = "ecom-kfp"
#: Every kustomization in the repository (tests check the list is complete).
KUSTOMIZATIONS = ("base", "overlays/gke-gpu", "examples/mpijob", "overlays/gke-gpu/mpijob")
CLUSTER_SCOPED = {"Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding",
                  "CustomResourceDefinition", "StorageClass"}


@functools.cache
def render(kustomization: str) -> tuple[dict[str, Any], ...]:
    """The objects ``kubectl kustomize manifests/<kustomization>`` prints (cached per session)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl not on PATH: the manifest tests need kubectl 1.32 (kustomize 5.5)")
    completed = subprocess.run([kubectl, "kustomize", str(MANIFESTS / kustomization)],
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, f"kubectl kustomize {kustomization} failed:\n{completed.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(completed.stdout) if doc)


def objects(kustomization: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Deep copies of the rendered objects (of one ``kind``), safe to mutate in a test."""
    return [copy.deepcopy(o) for o in render(kustomization) if kind is None or o["kind"] == kind]


def one(kustomization: str, kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects(kustomization, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kustomization}: expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def validate_core(obj: dict[str, Any]) -> None:
    """Strict Kubernetes schema validation; raises kubernetes_validate.ValidationError."""
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def pod_templates(mpijob: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """replica type -> pod template of an MPIJob."""
    return {role: spec["template"] for role, spec in mpijob["spec"]["mpiReplicaSpecs"].items()}


def validate_mpijob(mpijob: dict[str, Any]) -> None:
    """The stored v2beta1 schema, then every replica's pod template as a strict core/v1 PodTemplate.

    Raises:
        jsonschema.ValidationError: the MPIJob, or one of its pod templates, is invalid.
    """
    schema = json.loads(MPIJOB_SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(mpijob)
    for role, template in pod_templates(mpijob).items():
        wrapped = {"apiVersion": "v1", "kind": "PodTemplate",
                   "metadata": {"name": f"{mpijob['metadata'].get('name', 'mpijob')}-{role.lower()}"},
                   "template": template}
        validate_core(wrapped)


def containers(obj: Any) -> list[dict[str, Any]]:
    """Every container and init container anywhere in ``obj`` (pod templates of any kind)."""
    found = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(value)
            else:
                found.extend(containers(value))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(containers(item))
    return found
