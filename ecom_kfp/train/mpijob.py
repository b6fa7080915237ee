"""Multi-node Horovod through the MPI Operator: a ``kubeflow.org/v2beta1`` ``MPIJob``.

KFP v2 has no resource op, so the train component builds the manifest here (pure, unit-tested)
and creates it with the ``kubernetes`` client, then polls ``status.conditions`` until the job
succeeds or fails. Workers in other pods cannot see the component's local artifact paths, so
the job gets object-store URIs (DESIGN.md rule 5): the config is written next to the output and
each rank runs ``python -m ecom_kfp.train.worker <config URI>``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ecom_kfp import uri
from ecom_kfp.images import GPU_IMAGE, GPU_IMAGE_SSH_DIR, GPU_IMAGE_SSH_PORT, GPU_IMAGE_SSHD_COMMAND, GPU_IMAGE_UID
from ecom_kfp.train.config import ConfigError, TrainConfig
from ecom_kfp.train.report import TrainReport

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v2beta1", "mpijobs", "MPIJob"
CONFIG_FILE = "train_config.json"
CLEAN_POD_POLICIES = ("None", "Running", "All")
#: Installed by manifests/base (rbac.yaml, scheduling.yaml).
TRAINER_SERVICE_ACCOUNT = "ecom-kfp-trainer"
TRAINING_PRIORITY_CLASS = "ecom-kfp-training"
#: Where Kubernetes tells a pod its own namespace.
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class MpiJobSpec:
    """Shape of the job.

    Attributes:
        name: MPIJob name (DNS-1123).
        namespace: Namespace to create it in.
        workers: Worker pods.
        slots_per_worker: Horovod ranks (and GPUs) per worker pod.
        image: Image with ecom_kfp and MPI-enabled Horovod.
        gpus_per_worker: ``nvidia.com/gpu`` limit per worker; 0 for CPU-only workers.
        cpu / memory: Requests of each worker.
        node_selector / tolerations: Where workers may run (e.g. a GPU node pool).
        clean_pod_policy: Which pods to delete when the job ends.
        service_account: Service account of launcher and workers (``ecom-kfp-trainer`` in manifests/).
        priority_class: PriorityClass of the pods (``ecom-kfp-training`` in manifests/); empty for none.
    """

    name: str
    namespace: str = "kubeflow"
    workers: int = 1
    slots_per_worker: int = 1
    image: str = GPU_IMAGE
    gpus_per_worker: int = 1
    cpu: str = "4"
    memory: str = "16Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    clean_pod_policy: str = "Running"
    service_account: str = ""
    priority_class: str = ""

    def __post_init__(self) -> None:
        if self.workers < 1 or self.slots_per_worker < 1:
            raise ConfigError(f"an MPIJob needs >= 1 worker and slot, got {self.workers} x {self.slots_per_worker}")
        if self.clean_pod_policy not in CLEAN_POD_POLICIES:
            raise ConfigError(f"clean_pod_policy must be one of {CLEAN_POD_POLICIES}, got {self.clean_pod_policy!r}")

    @property
    def processes(self) -> int:
        return self.workers * self.slots_per_worker


def build_mpijob(spec: MpiJobSpec, config_uri: str) -> dict[str, Any]:
    """The MPIJob manifest running ``ecom_kfp.train.worker`` on ``spec.processes`` ranks.

    Same shape as ``manifests/examples/mpijob``: workers run the GPU image's non-root sshd, and the
    launcher starts only once every worker is ready, so mpirun never races them.
    """
    launcher_command = [
        "mpirun", "-np", str(spec.processes), "-bind-to", "none", "-map-by", "slot",
        "-x", "LD_LIBRARY_PATH", "-x", "PATH", "-x", "NCCL_DEBUG=WARN", "-mca", "pml", "ob1", "-mca", "btl", "^openib",
        "python", "-m", "ecom_kfp.train.worker", config_uri,
    ]
    container_security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod_common: dict[str, Any] = {"securityContext": {
        "runAsNonRoot": True, "runAsUser": GPU_IMAGE_UID, "runAsGroup": GPU_IMAGE_UID, "fsGroup": GPU_IMAGE_UID,
        "seccompProfile": {"type": "RuntimeDefault"}}}
    if spec.service_account:
        pod_common["serviceAccountName"] = spec.service_account
    if spec.priority_class:
        pod_common["priorityClassName"] = spec.priority_class
    worker_resources: dict[str, Any] = {"requests": {"cpu": spec.cpu, "memory": spec.memory}}
    if spec.gpus_per_worker:
        worker_resources["limits"] = {"nvidia.com/gpu": spec.gpus_per_worker}
    worker_pod: dict[str, Any] = {**pod_common, "containers": [{
        "name": "worker", "image": spec.image, "command": list(GPU_IMAGE_SSHD_COMMAND),
        "ports": [{"name": "ssh", "containerPort": GPU_IMAGE_SSH_PORT}],
        "readinessProbe": {"tcpSocket": {"port": "ssh"}, "periodSeconds": 5},
        "resources": worker_resources, "securityContext": container_security,
        # NCCL exchanges through shared memory; the container default (64 MiB) is too small.
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]}],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]}
    if spec.node_selector:
        worker_pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        worker_pod["tolerations"] = [dict(t) for t in spec.tolerations]
    launcher_pod: dict[str, Any] = {**pod_common, "containers": [{
        "name": "launcher", "image": spec.image, "command": launcher_command,
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}, "securityContext": container_security}]}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": {"app.kubernetes.io/part-of": "ecom-kfp"}},
        "spec": {
            "slotsPerWorker": spec.slots_per_worker,
            "runPolicy": {"cleanPodPolicy": spec.clean_pod_policy, "backoffLimit": 0},
            "mpiImplementation": "OpenMPI",
            "sshAuthMountPath": GPU_IMAGE_SSH_DIR,
            "launcherCreationPolicy": "WaitForWorkersReady",
            "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "restartPolicy": "OnFailure", "template": {"spec": launcher_pod}},
                "Worker": {"replicas": spec.workers, "restartPolicy": "Never", "template": {"spec": worker_pod}},
            },
        },
    }


class CustomObjectsApi(Protocol):
    """The two calls of ``kubernetes.client.CustomObjectsApi`` this module uses."""

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, body: dict) -> dict: ...

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str) -> dict: ...


def job_outcome(job: dict[str, Any]) -> str | None:
    """``"Succeeded"`` or ``"Failed"`` once a condition of that type is ``"True"``, else ``None``."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Succeeded", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


def submit_and_wait(manifest: dict[str, Any], api: CustomObjectsApi | None = None, poll_seconds: float = 15.0,
                    timeout_seconds: float = 24 * 3600.0) -> dict[str, Any]:
    """Create the MPIJob and poll it until it ends; returns its final object.

    Raises:
        RuntimeError: the job failed (with its last condition's message) or timed out.
    """
    api = api or _default_api()
    meta = manifest["metadata"]
    api.create_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, manifest)
    deadline = time.monotonic() + timeout_seconds
    last_state = None
    while True:
        job = api.get_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, meta["name"])
        conditions = (job.get("status") or {}).get("conditions") or []
        state = (conditions[-1].get("type"), conditions[-1].get("message")) if conditions else None
        if state != last_state:
            log.info("MPIJob %s/%s: %s", meta["namespace"], meta["name"], state)
            last_state = state
        outcome = job_outcome(job)
        if outcome == "Succeeded":
            return job
        if outcome == "Failed":
            raise RuntimeError(f"MPIJob {meta['namespace']}/{meta['name']} failed: {state[1] if state else ''}")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"MPIJob {meta['namespace']}/{meta['name']} did not finish within {timeout_seconds:.0f}s")
        time.sleep(poll_seconds)


def _default_api() -> CustomObjectsApi:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def _own_namespace() -> str:
    """The namespace this pod runs in; ``kubeflow`` (standalone KFP's) outside a pod."""
    try:
        with open(NAMESPACE_FILE, encoding="utf-8") as fh:
            return fh.read().strip() or "kubeflow"
    except OSError:
        return "kubeflow"


def job_spec(config: TrainConfig) -> MpiJobSpec:
    """The MPIJob ``--launcher mpijob`` creates: one worker pod with one GPU per process, named
    after ``--out``, where manifests/ installed its service account, priority class and RBAC (the
    namespace of the pipeline pod creating it)."""
    name = "ecom-kfp-train-" + hashlib.sha256(config.out.encode()).hexdigest()[:10]
    return MpiJobSpec(name=name, namespace=_own_namespace(), workers=config.num_processes,
                      service_account=TRAINER_SERVICE_ACCOUNT, priority_class=TRAINING_PRIORITY_CLASS)


def run_mpijob(config: TrainConfig, spec: MpiJobSpec | None = None, api: CustomObjectsApi | None = None,
               poll_seconds: float = 15.0) -> TrainReport:
    """Write ``config`` beside its output, run it as an MPIJob (``spec``, default :func:`job_spec`)
    and return rank 0's report.

    Raises:
        ConfigError: ``--data``/``--out`` are local paths other pods cannot see.
    """
    for flag, value in (("--data", config.data), ("--out", config.out)):
        if not uri.is_gcs(value):
            raise ConfigError(f"{flag} {value} must be a gs:// URI for an MPIJob: worker pods cannot see local paths")
    config_uri = uri.join(config.out, CONFIG_FILE)
    uri.write_text(config_uri, config.to_json())
    submit_and_wait(build_mpijob(spec or job_spec(config), config_uri), api, poll_seconds=poll_seconds)
    return TrainReport.read(config.out)
