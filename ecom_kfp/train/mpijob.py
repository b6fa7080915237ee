"""Multi-node Horovod through the MPI Operator: a ``kubeflow.org/v2beta1`` ``MPIJob``.

KFP v2 has no resource op, so the train component builds the manifest here (pure, unit-tested)
and creates it with the ``kubernetes`` client, then polls ``status.conditions`` until the job
succeeds or fails. Workers in other pods cannot see the component's local artifact paths, so
the job gets object-store URIs (docs/design.md rule 5): the config is written next to the output and
each rank runs ``python -m ecom_kfp.train.worker <config URI>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ecom_kfp import uri
from ecom_kfp.images import GPU_IMAGE, GPU_IMAGE_SSH_DIR, GPU_IMAGE_SSH_PORT, GPU_IMAGE_SSHD_COMMAND, GPU_IMAGE_UID
from ecom_kfp.train.config import IMAGENET_WEIGHTS, ConfigError, TrainConfig
from ecom_kfp.train.report import TrainReport
from ecom_kfp.train.tracking import resolve_tracking_uri

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
    """The calls of ``kubernetes.client.CustomObjectsApi`` this module uses."""

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        body: dict) -> dict: ...

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                     name: str) -> dict: ...

    def delete_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        name: str) -> dict: ...


#: Annotation holding the SHA-256 of the manifest a job was created from: a retried task re-attaches
#: only to a job that runs the same thing.
SPEC_ANNOTATION = "ecom-kfp.dev/spec-sha256"
#: HTTP status of the Kubernetes API for "already exists" and "not found".
CONFLICT, NOT_FOUND = 409, 404


def job_outcome(job: dict[str, Any]) -> str | None:
    """``"Succeeded"`` or ``"Failed"`` once a condition of that type is ``"True"``, else ``None``."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Succeeded", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


def _spec_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest["spec"], sort_keys=True).encode()).hexdigest()


def _api_status(error: Exception) -> int | None:
    return getattr(error, "status", None)


class MpiJobRunner:
    """Create-or-attach, wait, and clean up one MPIJob, like GCPC's ``JobRemoteRunner``.

    - A retried or resumed pipeline task computes the same job name (it is derived from the task's
      output URI), finds the job it started before and waits on it instead of starting a second
      training job; a job left ``Failed`` by an earlier attempt is deleted and created anew.
    - When the task is cancelled (KFP sends SIGTERM to the pod) or fails while waiting, the job is
      deleted so its GPU pods do not run on for nobody.
    """

    def __init__(self, manifest: dict[str, Any], api: CustomObjectsApi | None = None) -> None:
        self.manifest = {**manifest, "metadata": {
            **manifest["metadata"], "annotations": {**manifest["metadata"].get("annotations", {}),
                                                    SPEC_ANNOTATION: _spec_digest(manifest)}}}
        self.api = api or _default_api()
        meta = self.manifest["metadata"]
        self.namespace, self.name = meta["namespace"], meta["name"]
        self.attached = False

    def _call(self, verb: str, *args: Any) -> dict[str, Any]:
        return getattr(self.api, f"{verb}_namespaced_custom_object")(GROUP, VERSION, self.namespace, PLURAL, *args)

    def start(self) -> None:
        """Create the job, or attach to the one an earlier attempt of this task created."""
        try:
            self._call("create", self.manifest)
            return
        except Exception as err:  # the kubernetes client raises ApiException; only 409 is ours to handle
            if _api_status(err) != CONFLICT:
                raise
        existing = self._call("get", self.name)
        digest = ((existing.get("metadata") or {}).get("annotations") or {}).get(SPEC_ANNOTATION)
        if digest != self.manifest["metadata"]["annotations"][SPEC_ANNOTATION]:
            raise RuntimeError(f"MPIJob {self.namespace}/{self.name} already exists with another spec; "
                               "delete it or write the model to another output URI")
        if job_outcome(existing) == "Failed":
            log.info("MPIJob %s/%s failed in an earlier attempt: starting it anew", self.namespace, self.name)
            self.delete()
            self._call("create", self.manifest)
            return
        log.info("MPIJob %s/%s exists from an earlier attempt: attaching to it", self.namespace, self.name)
        self.attached = True

    def delete(self) -> None:
        """Delete the job (its pods go with it); a job that is already gone is fine."""
        try:
            self._call("delete", self.name)
        except Exception as err:
            if _api_status(err) != NOT_FOUND:
                raise

    def wait(self, poll_seconds: float, timeout_seconds: float) -> dict[str, Any]:
        """Poll ``status.conditions`` until the job succeeds; returns its final object.

        Raises:
            RuntimeError: the job failed (with its last condition's message) or timed out.
        """
        deadline = time.monotonic() + timeout_seconds
        last_state = None
        where = f"{self.namespace}/{self.name}"
        while True:
            job = self._call("get", self.name)
            conditions = (job.get("status") or {}).get("conditions") or []
            state = (conditions[-1].get("type"), conditions[-1].get("message")) if conditions else None
            if state != last_state:
                log.info("MPIJob %s: %s", where, state)
                last_state = state
            outcome = job_outcome(job)
            if outcome == "Succeeded":
                return job
            if outcome == "Failed":
                raise RuntimeError(f"MPIJob {where} failed: {state[1] if state else ''}")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"MPIJob {where} did not finish within {timeout_seconds:.0f}s")
            time.sleep(poll_seconds)


class _Cancelled(BaseException):
    """SIGTERM arrived while waiting (a BaseException, so no ``except Exception`` swallows it)."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Cancelled` in the main thread for the duration of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def cancel(signum: int, frame: Any) -> None:
        raise _Cancelled()

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def submit_and_wait(manifest: dict[str, Any], api: CustomObjectsApi | None = None, poll_seconds: float = 15.0,
                    timeout_seconds: float = 24 * 3600.0) -> dict[str, Any]:
    """Create (or re-attach to) the MPIJob and poll it until it ends; returns its final object.

    The job is deleted when the wait fails, times out or is cancelled by SIGTERM; a job that
    succeeded is left for its logs (``cleanPodPolicy`` already removed its running pods).

    Raises:
        RuntimeError: the job failed (with its last condition's message) or timed out.
        SystemExit: the task was cancelled (SIGTERM); the job was deleted first.
    """
    runner = MpiJobRunner(manifest, api)
    with _sigterm_raises():
        runner.start()
        try:
            return runner.wait(poll_seconds, timeout_seconds)
        except _Cancelled:
            log.info("cancelled: deleting MPIJob %s/%s", runner.namespace, runner.name)
            runner.delete()
            raise SystemExit(128 + signal.SIGTERM) from None
        except BaseException:
            runner.delete()
            raise


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

    The config the pods read names the tracking store this process resolved: a
    ``$MLFLOW_TRACKING_URI`` set here is not in the pods' environment.

    Raises:
        ConfigError: ``--data``/``--out`` (or a ``--weights`` file) are local paths other pods
            cannot see, or no tracking store is configured
            (:func:`~ecom_kfp.train.tracking.resolve_tracking_uri`).
    """
    read_by_pods = [("--data", config.data), ("--out", config.out)]
    if config.weights and config.weights != IMAGENET_WEIGHTS:  # imagenet: in every pod's image
        read_by_pods.append(("--weights", config.weights))
    for flag, value in read_by_pods:
        if not uri.is_gcs(value):
            raise ConfigError(f"{flag} {value} must be a gs:// URI for an MPIJob: worker pods cannot see local paths")
    config = dataclasses.replace(config, mlflow_tracking_uri=resolve_tracking_uri(config.mlflow_tracking_uri, config.out))
    config_uri = uri.join(config.out, CONFIG_FILE)
    uri.write_text(config_uri, config.to_json())
    submit_and_wait(build_mpijob(spec or job_spec(config), config_uri), api, poll_seconds=poll_seconds)
    return TrainReport.read(config.out)
