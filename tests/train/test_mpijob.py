"""The MPIJob manifest and the submit-and-wait loop.

There is no Kubernetes API server on these machines (DESIGN.md), so submission is tested against
a fake ``CustomObjectsApi`` that records the created object and replays a status sequence; the
pod templates are validated for real with kubernetes-validate against the v1 schemas.
"""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from ecom_kfp.train.config import ConfigError, TrainConfig
from ecom_kfp.train.mpijob import MpiJobSpec, build_mpijob, job_outcome, job_spec, run_mpijob, submit_and_wait

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
    """Stands in for kubernetes.client.CustomObjectsApi: no API server can run here."""

    def __init__(self, statuses: list[dict]) -> None:
        self.created: list[tuple[str, str, str, str, dict]] = []
        self.statuses = statuses
        self.gets = 0

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.created.append((group, version, namespace, plural, body))
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        status = self.statuses[min(self.gets, len(self.statuses) - 1)]
        self.gets += 1
        return {**self.created[-1][4], "status": status}


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


def test_a_failed_job_fails_the_task_with_its_message() -> None:
    api = FakeCustomObjectsApi([RUNNING, FAILED])
    with pytest.raises(RuntimeError, match="train-1 failed: worker OOMKilled"):
        submit_and_wait(build_mpijob(_spec(), CONFIG_URI), api, poll_seconds=0)


def test_a_job_that_never_ends_times_out() -> None:
    api = FakeCustomObjectsApi([RUNNING])
    with pytest.raises(RuntimeError, match="did not finish"):
        submit_and_wait(build_mpijob(_spec(), CONFIG_URI), api, poll_seconds=0, timeout_seconds=0)


def test_run_mpijob_needs_object_store_uris_and_writes_the_config(gcs_bucket: str, tmp_path) -> None:
    with pytest.raises(ConfigError, match="--data /local/data must be a gs:// URI"):
        run_mpijob(TrainConfig(data="/local/data", out=f"{gcs_bucket}/m"), _spec(), FakeCustomObjectsApi([SUCCEEDED]))
    from ecom_kfp import uri

    config = TrainConfig(data=f"{gcs_bucket}/data", out=f"{gcs_bucket}/model", num_processes=2)
    # The fake job "runs" by leaving a report where rank 0 would write it.
    uri.write_json(f"{gcs_bucket}/model/report.json", {"data": config.data, "out": config.out, "backbone": config.backbone,
                                                       "inputs": config.inputs, "num_processes": 2, "image_size": 224})
    api = FakeCustomObjectsApi([SUCCEEDED])
    report = run_mpijob(config, _spec(), api, poll_seconds=0)
    assert report.num_processes == 2
    assert TrainConfig.from_json(uri.read_text(f"{gcs_bucket}/model/train_config.json")) == config
    command = api.created[0][4]["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"]
    assert command[-1] == f"{gcs_bucket}/model/train_config.json"


def test_the_mpijob_launcher_runs_one_gpu_worker_per_process_as_the_trainer() -> None:
    spec = job_spec(TrainConfig(data="gs://b/data", out="gs://b/model", num_processes=3, launcher="mpijob"))
    assert spec.workers == 3 and spec.gpus_per_worker == 1 and spec.name.startswith("ecom-kfp-train-")
    assert (spec.service_account, spec.priority_class) == ("ecom-kfp-trainer", "ecom-kfp-training")
