"""Every kustomization renders, every object validates, images are pinned, namespaces are right."""

from __future__ import annotations

import re

import jsonschema
import kubernetes_validate
import pytest

from ecom_kfp.images import IMAGES, image_ref

from .support import CLUSTER_SCOPED, KUSTOMIZATIONS, MANIFESTS, NAMESPACE, containers, objects, validate_core, validate_mpijob


def test_every_kustomization_is_tested() -> None:
    found = {str(p.parent.relative_to(MANIFESTS)) for p in MANIFESTS.rglob("kustomization.yaml")}
    assert found == set(KUSTOMIZATIONS)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_object_validates(kustomization: str) -> None:
    rendered = objects(kustomization)
    assert rendered, f"{kustomization} rendered nothing"
    for obj in rendered:
        if obj["kind"] == "MPIJob":
            validate_mpijob(obj)
        else:
            validate_core(obj)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_images_are_pinned_and_ours_carry_the_package_version(kustomization: str) -> None:
    ours = {image_ref(name).rsplit(":", 1)[0]: image_ref(name) for name in IMAGES}
    for container in containers(objects(kustomization)):
        image = container["image"]
        repository, _, tag = image.partition("@")[0].rpartition(":")
        assert repository and "/" not in tag, f"{container['name']}: image {image} has no tag"
        assert tag != "latest", f"{container['name']}: image {image} is tagged latest"
        if repository in ours:
            assert image == ours[repository], f"{image} is not {ours[repository]} (ecom_kfp.images)"
        else:
            assert re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9]+)?", tag), f"third-party image {image}: pin a version"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_namespaced_objects_are_in_the_namespace(kustomization: str) -> None:
    for obj in objects(kustomization):
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, f"{obj['kind']}/{obj['metadata']['name']} is cluster-scoped"
        else:
            assert namespace == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']} in {namespace!r}"


def test_strict_validation_rejects_a_broken_object() -> None:
    deployment = next(o for o in objects("base", "Deployment"))
    deployment["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(deployment)
    deployment = next(o for o in objects("base", "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = ["2Gi"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(deployment)


def test_mpijob_pod_templates_are_validated_as_pod_templates() -> None:
    mpijob = objects("examples/mpijob", "MPIJob")[0]
    mpijob["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "ssh"
    with pytest.raises(jsonschema.ValidationError):
        validate_mpijob(mpijob)
