"""The example MPIJob: valid v2beta1, consistent with the GPU image, the install and the train CLI;
and the stored schema rejects what the API server or the MPI Operator would.
"""

from __future__ import annotations

import copy
import io
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from dockerfile_parse import DockerfileParser

from ecom_kfp.cli import build_parser
from ecom_kfp.images import IMAGES

from .support import REPO, objects, one, validate_mpijob

EXAMPLE = "examples/mpijob"
GKE = "overlays/gke-gpu/mpijob"


def example() -> dict[str, Any]:
    return objects(EXAMPLE, "MPIJob")[0]


def generated() -> dict[str, Any]:
    """What the train component creates with ``launcher=mpijob`` (2 workers x 8 GPUs)."""
    from ecom_kfp.train.mpijob import MpiJobSpec, build_mpijob

    spec = MpiJobSpec(name="ecom-kfp-train-0123456789", namespace="ecom-kfp", workers=2, slots_per_worker=8,
                      gpus_per_worker=8, service_account="ecom-kfp-trainer", priority_class="ecom-kfp-training")
    return build_mpijob(spec, "gs://bucket/model/train_config.json")


def test_generated_mpijob_validates_against_the_stored_schema() -> None:
    validate_mpijob(generated())


def replica(mpijob: dict[str, Any], role: str) -> dict[str, Any]:
    return mpijob["spec"]["mpiReplicaSpecs"][role]


def container(mpijob: dict[str, Any], role: str) -> dict[str, Any]:
    (only,) = replica(mpijob, role)["template"]["spec"]["containers"]
    return only


def config_value(path: Path, key: str) -> str:
    """``key VALUE`` from an ssh(d) config file."""
    for line in path.read_text().splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == key:
            return parts[1].strip()
    raise AssertionError(f"{key} not set in {path}")


def launcher_argv(mpijob: dict[str, Any], kustomization: str) -> list[str]:
    """The launcher's command with ``$(VAR)`` expanded from its ConfigMap, as the kubelet would."""
    launcher = container(mpijob, "Launcher")
    env: dict[str, str] = {}
    for source in launcher.get("envFrom", []):
        env.update(one(kustomization, "ConfigMap", source["configMapRef"]["name"])["data"])
    argv = launcher["command"] + launcher.get("args", [])
    expanded = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in argv]
    assert not any("$(" in arg for arg in expanded), f"undefined variable in {shlex.join(argv)}"
    return expanded


def test_horovodrun_starts_one_rank_per_gpu_slot() -> None:
    mpijob = example()
    spec = mpijob["spec"]
    assert spec["mpiImplementation"] == "OpenMPI" and spec["runPolicy"]["cleanPodPolicy"] in ("Running", "All")
    workers, slots = replica(mpijob, "Worker")["replicas"], spec["slotsPerWorker"]
    assert (workers, slots) == (2, 8)
    assert int(container(mpijob, "Worker")["resources"]["limits"]["nvidia.com/gpu"]) == slots
    assert "nvidia.com/gpu" not in str(container(mpijob, "Launcher")["resources"])
    argv = launcher_argv(mpijob, EXAMPLE)
    assert argv[0] == "horovodrun" and "--mpi" in argv
    assert int(argv[argv.index("-np") + 1]) == workers * slots
    assert argv[argv.index("--hostfile") + 1] == "/etc/mpi/hostfile"  # written by the MPI Operator


def test_launcher_runs_ecom_kfp_train_with_flags_the_cli_accepts() -> None:
    argv = launcher_argv(example(), EXAMPLE)
    train = argv[argv.index("ecom-kfp") + 1:]
    assert train[0] == "train"
    args = build_parser("train").parse_args(train)
    assert args.data.startswith("gs://") and args.out.startswith("gs://")
    assert args.mlflow_tracking_uri.startswith("http://mlflow.")


@pytest.mark.parametrize("source", [example, generated], ids=["example", "generated"])
def test_workers_match_the_gpu_image_ssh_setup_and_user(source) -> None:
    mpijob = source()
    sshd_config = REPO / "images" / "gpu" / "sshd_config"
    ssh_config = REPO / "images" / "gpu" / "ssh_config"
    gpu = DockerfileParser(fileobj=io.BytesIO((REPO / IMAGES["ecom-kfp-gpu"]).read_bytes()))
    copies = [s["value"].split() for s in gpu.structure if s["instruction"] == "COPY"]
    sshd_dest = next(words[-1] for words in copies if words[-2] == "images/gpu/sshd_config")
    worker = container(mpijob, "Worker")
    assert worker["command"] == ["/usr/sbin/sshd", "-De", "-f", sshd_dest]
    port = int(config_value(sshd_config, "Port"))
    assert int(config_value(ssh_config, "Port")) == port
    assert worker["ports"][0]["containerPort"] == port
    ssh_dir = mpijob["spec"]["sshAuthMountPath"]
    assert Path(config_value(sshd_config, "HostKey")).parent == Path(ssh_dir)
    uid = int(next(s["value"] for s in reversed(gpu.structure) if s["instruction"] == "USER").split(":")[0])
    for role in ("Launcher", "Worker"):
        pod = replica(mpijob, role)["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == uid and pod["securityContext"]["runAsNonRoot"] is True


def test_example_uses_the_installed_priority_class_service_account_and_namespace() -> None:
    mpijob = example()
    priority_classes = {o["metadata"]["name"] for o in objects("base", "PriorityClass")}
    accounts = {o["metadata"]["name"] for o in objects("base", "ServiceAccount")}
    namespace = objects("base", "Namespace")[0]["metadata"]["name"]
    assert mpijob["metadata"]["namespace"] == namespace
    for role in ("Launcher", "Worker"):
        pod = replica(mpijob, role)["template"]["spec"]
        assert pod["priorityClassName"] in priority_classes
        assert pod["serviceAccountName"] in accounts


def test_gke_overlay_puts_workers_on_the_gpu_pool() -> None:
    mpijob = objects(GKE, "MPIJob")[0]
    validate_mpijob(mpijob)
    worker = replica(mpijob, "Worker")["template"]["spec"]
    assert worker["nodeSelector"]["cloud.google.com/gke-accelerator"].startswith("nvidia-")
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in worker["tolerations"]
    assert "nodeSelector" not in replica(mpijob, "Launcher")["template"]["spec"]
    argv = launcher_argv(mpijob, GKE)
    args = build_parser("train").parse_args(argv[argv.index("ecom-kfp") + 1:])
    # The overlay's params.env replaced the example's bucket.
    assert args.data.startswith("gs://my-project-") and args.out.startswith("gs://my-project-")


def mutated(change) -> dict[str, Any]:
    mpijob = copy.deepcopy(example())
    change(mpijob)
    return mpijob


BROKEN = {
    "unknown cleanPodPolicy": lambda m: m["spec"]["runPolicy"].update(cleanPodPolicy="Sometimes"),
    "misspelt field": lambda m: m["spec"].update(slotPerWorker=8),
    "no launcher": lambda m: m["spec"]["mpiReplicaSpecs"].pop("Launcher"),
    "two launchers": lambda m: m["spec"]["mpiReplicaSpecs"]["Launcher"].update(replicas=2),
    "unknown replica type": lambda m: m["spec"]["mpiReplicaSpecs"].update(PS=m["spec"]["mpiReplicaSpecs"]["Worker"]),
    "unknown MPI": lambda m: m["spec"].update(mpiImplementation="MVAPICH"),
    "string slots": lambda m: m["spec"].update(slotsPerWorker="8"),
    "wrong apiVersion": lambda m: m.update(apiVersion="kubeflow.org/v1"),
    "no containers": lambda m: m["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"].update(containers=[]),
    "bad restartPolicy": lambda m: m["spec"]["mpiReplicaSpecs"]["Worker"].update(restartPolicy="Sometimes"),
    "invalid pod field": lambda m: m["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"].update(nodeSelecter={}),
}


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_schema_rejects(fault: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_mpijob(mutated(BROKEN[fault]))
