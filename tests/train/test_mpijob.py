"""The MPIJob manifest and the submit-and-wait loop.

There is no Kubernetes API server on these machines (docs/design.md), so submission, re-attaching
and deletion are tested against a fake ``CustomObjectsApi`` that keeps objects by name, answers
with the client's real ``ApiException`` statuses and replays a status sequence; the pod templates
are validated for real with kubernetes-validate against the v1 schemas.
"""

from __future__ import annotations

import json
import os
import signal

import kubernetes_validate
import pytest
from kubernetes.client.exceptions import ApiException

from ecom_kfp.train.config import ConfigError, TrainConfig
from ecom_kfp.train.mpijob import MpiJobRunner, MpiJobSpec, build_mpijob, job_outcome, job_spec, run_mpijob, submit_and_wait

CONFIG_URI = "gs://bucket/run/model/train_config.json"


def _spec(**overrides) -> MpiJobSpec:
    base = dict(name="train-1", namespace="ml", workers=2, slots_per_worker=4, gpus_per_worker=4,
                node_selector={"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
                tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    return MpiJobSpec(**{**base, **overrides})


def test_manifest_has_the_v2beta1_mpijob_structure() -> None:
    job = build_mpijob(_spec(), CONFIG_URI)
    assert job["apiVersion"] == "kubeflow.org/v2beta1" and job["kind"] == "MPIJob"
    assert job["metadata"] == {"name": "train-1", "namespace": "ml", "labels": {"app.kubernetes.io/part-of": "ecom-kfp"}}
    spec = job["spec"]
    assert spec["slotsPerWorker"] == 4
    assert spec["runPolicy"]["cleanPodPolicy"] == "Running"
    assert spec["mpiImplementation"] == "OpenMPI"
    assert set(spec["mpiReplicaSpecs"]) == {"Launcher", "Worker"}
    launcher, worker = spec["mpiReplicaSpecs"]["Launcher"], spec["mpiReplicaSpecs"]["Worker"]
    assert launcher["replicas"] == 1 and worker["replicas"] == 2
    command = launcher["template"]["spec"]["containers"][0]["command"]
    assert command[:1] == ["mpirun"] and command[command.index("-np") + 1] == "8"
    assert command[-4:] == ["python", "-m", "ecom_kfp.train.worker", CONFIG_URI]
    worker_pod = worker["template"]["spec"]
    assert worker_pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 4}
    assert worker_pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert worker_pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    json.dumps(job)  # the API takes plain JSON


def test_pod_templates_are_valid_kubernetes_pods() -> None:
    job = build_mpijob(_spec(service_account="mpi-launcher"), CONFIG_URI)
    for role, replica in job["spec"]["mpiReplicaSpecs"].items():
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": role.lower()},
                    "template": replica["template"]}
        kubernetes_validate.validate(template, "1.32", strict=True)


def test_cpu_workers_have_no_gpu_limit_and_bad_specs_fail() -> None:
    job = build_mpijob(_spec(gpus_per_worker=0, node_selector={}, tolerations=[]), CONFIG_URI)
    worker_pod = job["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "limits" not in worker_pod["containers"][0]["resources"]
    assert "nodeSelector" not in worker_pod and "tolerations" not in worker_pod
    with pytest.raises(ConfigError, match="clean_pod_policy"):
        _spec(clean_pod_policy="Sometimes")
    with pytest.raises(ConfigError, match=">= 1 worker"):
        _spec(workers=0)


class FakeCustomObjectsApi:
    """Stands in for kubernetes.client.CustomObjectsApi: no API server can run here.

    It keeps created objects by name, answers a second create of the same name with the API's
    409 ``ApiException``, replays ``statuses`` on successive gets and records deletes.
    """

    def __init__(self, statuses: list[dict], existing: dict | None = None, on_get=None) -> None:
        self.created: list[tuple[str, str, str, str, dict]] = []
        self.objects: dict[str, dict] = {}
        if existing is not None:
            self.objects[existing["metadata"]["name"]] = existing
        self.deleted: list[str] = []
        self.statuses = statuses
        self.gets = 0
        self.on_get = on_get

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        name = body["metadata"]["name"]
        if name in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.created.append((group, version, namespace, plural, body))
        self.objects[name] = body
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        if name not in self.objects:
            raise ApiException(status=404, reason="NotFound")
        if self.on_get:
            self.on_get(self.gets)
        status = self.statuses[min(self.gets, len(self.statuses) - 1)]
        self.gets += 1
        return {**self.objects[name], "status": status}

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        if self.objects.pop(name, None) is None:
            raise ApiException(status=404, reason="NotFound")
        self.deleted.append(name)
        return {}


RUNNING = {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]}
SUCCEEDED = {"conditions": [*RUNNING["conditions"], {"type": "Succeeded", "status": "True", "message": "done"}]}
FAILED = {"conditions": [*RUNNING["conditions"], {"type": "Failed", "status": "True", "message": "worker OOMKilled"}]}


def test_submit_creates_the_job_and_waits_for_success() -> None:
    api = FakeCustomObjectsApi([{}, RUNNING, SUCCEEDED])
    job = submit_and_wait(build_mpijob(_spec(), CONFIG_URI), api, poll_seconds=0)
    group, version, namespace, plural, body = api.created[0]
    assert (group, version, namespace, plural) == ("kubeflow.org", "v2beta1", "ml", "mpijobs")
    assert body["metadata"]["name"] == "train-1"
    assert api.gets == 3 and job_outcome(job) == "Succeeded"


def test_a_failed_job_fails_the_task_with_its_message_and_is_deleted() -> None:
    api = FakeCustomObjectsApi([RUNNING, FAILED])
    with pytest.raises(RuntimeError, match="train-1 failed: worker OOMKilled"):
        submit_and_wait(build_mpijob(_spec(), CONFIG_URI), api, poll_seconds=0)
    assert api.deleted == ["train-1"]


def test_a_job_that_never_ends_times_out_and_is_deleted() -> None:
    api = FakeCustomObjectsApi([RUNNING])
    with pytest.raises(RuntimeError, match="did not finish"):
        submit_and_wait(build_mpijob(_spec(), CONFIG_URI), api, poll_seconds=0, timeout_seconds=0)
    assert api.deleted == ["train-1"]


def _earlier_attempt(manifest: dict) -> dict:
    """The object an earlier attempt of the same task created (with its spec annotation)."""
    return MpiJobRunner(manifest, FakeCustomObjectsApi([])).manifest


def test_a_retried_task_attaches_to_the_running_job_instead_of_starting_another() -> None:
    manifest = build_mpijob(_spec(), CONFIG_URI)
    api = FakeCustomObjectsApi([RUNNING, SUCCEEDED], existing=_earlier_attempt(manifest))
    job = submit_and_wait(manifest, api, poll_seconds=0)
    assert api.created == [] and api.deleted == [] and job_outcome(job) == "Succeeded"


def test_a_job_that_failed_in_an_earlier_attempt_is_replaced() -> None:
    manifest = build_mpijob(_spec(), CONFIG_URI)
    api = FakeCustomObjectsApi([FAILED, RUNNING, SUCCEEDED], existing=_earlier_attempt(manifest))
    job = submit_and_wait(manifest, api, poll_seconds=0)
    assert api.deleted == ["train-1"] and len(api.created) == 1 and job_outcome(job) == "Succeeded"


def test_a_job_of_the_same_name_with_another_spec_is_not_adopted() -> None:
    other = _earlier_attempt(build_mpijob(_spec(workers=1), CONFIG_URI))
    api = FakeCustomObjectsApi([RUNNING], existing=other)
    with pytest.raises(RuntimeError, match="already exists with another spec"):
        submit_and_wait(build_mpijob(_spec(), CONFIG_URI), api, poll_seconds=0)
    assert api.created == [] and api.deleted == []


def test_cancelling_the_task_deletes_the_job() -> None:
    """KFP cancels a run by terminating the task's pod: SIGTERM while waiting deletes the MPIJob."""

    def terminate_on_second_poll(gets: int) -> None:
        if gets == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    api = FakeCustomObjectsApi([RUNNING], on_get=terminate_on_second_poll)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_info:
        submit_and_wait(build_mpijob(_spec(), CONFIG_URI), api, poll_seconds=0.01, timeout_seconds=30)
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert api.deleted == ["train-1"]
    assert signal.getsignal(signal.SIGTERM) is previous


def _leave_report(config: TrainConfig) -> None:
    """The fake job "runs" by leaving a report where rank 0 would write it."""
    from ecom_kfp import uri

    uri.write_json(uri.join(config.out, "report.json"), {
        "data": config.data, "out": config.out, "backbone": config.backbone, "inputs": config.inputs,
        "num_processes": config.num_processes, "image_size": 224})


def test_run_mpijob_needs_object_store_uris_and_writes_the_config(gcs_bucket: str, tmp_path) -> None:
    with pytest.raises(ConfigError, match="--data /local/data must be a gs:// URI"):
        run_mpijob(TrainConfig(data="/local/data", out=f"{gcs_bucket}/m"), _spec(), FakeCustomObjectsApi([SUCCEEDED]))
    from ecom_kfp import uri

    config = TrainConfig(data=f"{gcs_bucket}/data", out=f"{gcs_bucket}/model", num_processes=2,
                         mlflow_tracking_uri="http://127.0.0.1:5000")
    _leave_report(config)
    api = FakeCustomObjectsApi([SUCCEEDED])
    report = run_mpijob(config, _spec(), api, poll_seconds=0)
    assert report.num_processes == 2
    assert TrainConfig.from_json(uri.read_text(f"{gcs_bucket}/model/train_config.json")) == config
    command = api.created[0][4]["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"]
    assert command[-1] == f"{gcs_bucket}/model/train_config.json"


def test_a_weights_file_the_pods_cannot_see_is_refused_before_the_job(gcs_bucket: str) -> None:
    """A local --weights file would be missing in every pod; the packaged imagenet weights are in each."""
    base = dict(data=f"{gcs_bucket}/data", out=f"{gcs_bucket}/model", backbone="efficientnet-lite0",
                mlflow_tracking_uri="http://127.0.0.1:5000")
    api = FakeCustomObjectsApi([SUCCEEDED])
    with pytest.raises(ConfigError, match="--weights /local/lite0.weights.h5 must be a gs:// URI"):
        run_mpijob(TrainConfig(**base, weights="/local/lite0.weights.h5"), _spec(), api, poll_seconds=0)
    assert not api.created
    for job, weights in enumerate((f"{gcs_bucket}/lite0.weights.h5", "imagenet")):
        config = TrainConfig(**base, weights=weights)
        _leave_report(config)
        run_mpijob(config, _spec(name=f"train-{job}"), api, poll_seconds=0)
    assert [created[4]["metadata"]["name"] for created in api.created] == ["train-0", "train-1"]


def test_the_pods_are_given_the_tracking_store_of_the_launching_environment(gcs_bucket: str, monkeypatch) -> None:
    """``$MLFLOW_TRACKING_URI`` of the launching pod does not reach the workers: the config they read names it."""
    from ecom_kfp import uri
    from ecom_kfp.train.tracking import TRACKING_URI_ENV

    config = TrainConfig(data=f"{gcs_bucket}/data", out=f"{gcs_bucket}/model")
    monkeypatch.delenv(TRACKING_URI_ENV, raising=False)
    with pytest.raises(ConfigError, match="--mlflow-tracking-uri is empty"):
        run_mpijob(config, _spec(), FakeCustomObjectsApi([SUCCEEDED]), poll_seconds=0)
    monkeypatch.setenv(TRACKING_URI_ENV, "http://mlflow.ecom-kfp.svc.cluster.local:5000")
    _leave_report(config)
    run_mpijob(config, _spec(), FakeCustomObjectsApi([SUCCEEDED]), poll_seconds=0)
    written = TrainConfig.from_json(uri.read_text(f"{gcs_bucket}/model/train_config.json"))
    assert written.mlflow_tracking_uri == "http://mlflow.ecom-kfp.svc.cluster.local:5000"


def test_the_mpijob_launcher_runs_one_gpu_worker_per_process_as_the_trainer() -> None:
    spec = job_spec(TrainConfig(data="gs://b/data", out="gs://b/model", num_processes=3, launcher="mpijob"))
    assert spec.workers == 3 and spec.gpus_per_worker == 1 and spec.name.startswith("ecom-kfp-train-")
    assert (spec.service_account, spec.priority_class) == ("ecom-kfp-trainer", "ecom-kfp-training")
