"""What the compiled pipelines ask of a cluster: parameters, resources, GPU pool, retries, caching."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ecom_kfp.pipelines.task_settings import GPU_TAINT_KEY, NETWORK_RETRIES


def _load(root: Path, name: str) -> tuple[dict, dict]:
    docs = list(yaml.safe_load_all((root / "pipelines" / f"{name}.yaml").read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else {})


@pytest.fixture(scope="module")
def training(compiled_root: Path) -> tuple[dict, dict]:
    return _load(compiled_root, "training_pipeline")


@pytest.fixture(scope="module")
def data(compiled_root: Path) -> tuple[dict, dict]:
    return _load(compiled_root, "data_pipeline")


def _forwarded_defaults(spec: dict) -> list[tuple[str, str, object, object]]:
    """(pipeline parameter, component input, pipeline default, component default) for every run
    parameter that reaches a component's input, through nested DAGs (loops, sub-pipelines)."""
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    found = []

    def walk(dag: dict, run_parameter_of: dict[str, str]) -> None:
        for task in dag.get("tasks", {}).values():
            component_name = task["componentRef"]["name"]
            component = spec["components"][component_name]
            inner = {}
            for name, value in task.get("inputs", {}).get("parameters", {}).items():
                source = value.get("componentInputParameter", "").removeprefix("pipelinechannel--")
                if source in run_parameter_of:
                    inner[name] = run_parameter_of[source]
            if "dag" in component:
                walk(component["dag"], inner)
                continue
            inputs = component.get("inputDefinitions", {}).get("parameters", {})
            found.extend((parameter, f"{component_name}.{name}", defaults[parameter].get("defaultValue"),
                          inputs.get(name, {}).get("defaultValue")) for name, parameter in inner.items())

    walk(spec["root"]["dag"], {name: name for name in defaults})
    return found


@pytest.mark.parametrize("pipeline", ["training_pipeline", "data_pipeline", "scoring_pipeline"])
def test_run_parameters_default_to_the_settings_they_set(compiled_root: Path, pipeline: str) -> None:
    """A pipeline parameter that sets a stage's setting has that setting's default, so a run that
    leaves it unset behaves as the CLI does without the flag. Components take their defaults from
    their configs (tests/test_settings.py); the pipelines' signatures repeat them, and this is what
    keeps the two from drifting apart."""
    forwarded = _forwarded_defaults(_load(compiled_root, pipeline)[0])
    assert len({parameter for parameter, *_ in forwarded}) >= 10
    differing = [(parameter, target, ours, theirs) for parameter, target, ours, theirs in forwarded
                 # Required run inputs and inputs without a default of their own (resources, plan
                 # steps' lists) have nothing to agree with.
                 if ours is not None and theirs is not None and ours != theirs]
    assert differing == []


def _all_tasks(spec: dict) -> dict[str, dict]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update((component.get("dag") or {}).get("tasks") or {})
    return tasks


def test_training_pipeline_exposes_the_ui_parameters(training) -> None:
    params = training[0]["root"]["inputDefinitions"]["parameters"]
    for name in ("catalog", "catalog_format", "column_map", "images_base", "image_size",
                 "split_fractions", "max_levels", "backbone", "epochs", "fusion", "weights", "frozen_backbone",
                 "seeds", "num_gpus",
                 "gpu_accelerator", "gpu_node_selector", "mlflow_tracking_uri", "serving_uri",
                 "confidence_threshold", "min_weighted_score", "cpu_request", "memory"):
        assert name in params, name
        assert params[name].get("description"), f"{name} has no description for the UI"
    assert not params["catalog"].get("isOptional")


def test_the_model_settings_of_a_run_reach_every_member_train(training) -> None:
    """The settings of the best model measured on myntra-dev (late fusion on frozen ImageNet
    features) are run parameters: each member's train task gets them from the run's."""
    spec = training[0]
    member = spec["components"]["comp-for-loop-1"]["dag"]["tasks"]["train-member"]["inputs"]["parameters"]
    train = spec["components"]["comp-train-member"]["dag"]["tasks"]["train-op"]["inputs"]["parameters"]
    for name in ("fusion", "weights", "frozen_backbone", "backbone", "image_size"):
        assert member[name] == {"componentInputParameter": f"pipelinechannel--{name}"}, name
        assert train[name] == {"componentInputParameter": name}, name


def test_stage_order_and_push_only_when_blessed(training) -> None:
    spec = training[0]
    root = spec["root"]["dag"]["tasks"]
    assert root["dedupe-op"]["dependentTasks"] == ["ingest-op"]
    assert root["tfrecord-build-op"]["dependentTasks"] == ["dedupe-op"]
    # One member per checked seed, each a train-member pipeline (parameter resources), gathered by
    # ensemble. The seeds are checked beside ingest: nothing but the run parameter feeds the plan.
    assert "dependentTasks" not in root["seed-plan-op"]
    assert root["seed-plan-op"]["inputs"]["parameters"]["seeds"] == {"componentInputParameter": "seeds"}
    loop = root["for-loop-1"]
    assert sorted(loop["dependentTasks"]) == ["seed-plan-op", "tfrecord-build-op"]
    items = loop["parameterIterator"]["items"]["inputParameter"]
    assert loop["inputs"]["parameters"][items]["taskOutputParameter"]["producerTask"] == "seed-plan-op"
    assert loop["iteratorPolicy"] == {"parallelismLimit": 16}
    [member] = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"].values()
    assert list(spec["components"][member["componentRef"]["name"]]["dag"]["tasks"]) == ["train-op"]
    assert root["ensemble-op"]["dependentTasks"] == ["for-loop-1"]
    assert root["ensemble-op"]["inputs"]["artifacts"]["models"]["taskOutputArtifact"]["producerTask"] == "for-loop-1"
    for task in ("evaluate-op", "push-if-blessed"):
        assert root[task]["inputs"]["artifacts"]["model"]["taskOutputArtifact"] == {
            "outputArtifactKey": "ensemble", "producerTask": "ensemble-op"}, task
    assert "push-op" not in root
    gate = root["push-if-blessed"]
    assert gate["inputs"]["parameters"]["blessed"] == {
        "taskOutputParameter": {"outputParameterKey": "blessed", "producerTask": "evaluate-op"}}
    gate_tasks = spec["components"][gate["componentRef"]["name"]]["dag"]["tasks"]
    [condition] = gate_tasks.values()
    assert "pipelinechannel--blessed" in condition["triggerPolicy"]["condition"]
    condition_tasks = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    assert list(condition_tasks) == ["push-op"]


def test_train_runs_on_the_gpu_pool_with_parameter_resources(training) -> None:
    spec, platform = training
    resources = spec["deploymentSpec"]["executors"]["exec-train-op"]["container"]["resources"]
    assert "pipelinechannel--num_gpus" in resources["accelerator"]["resourceCount"]
    assert "pipelinechannel--gpu_accelerator" in resources["accelerator"]["resourceType"]
    assert "pipelinechannel--train_memory" in resources["resourceMemoryLimit"]
    # ... read from the train-member pipeline's inputs, which the seeds loop fills from the run's.
    member = spec["components"]["comp-for-loop-1"]["dag"]["tasks"]["train-member"]["inputs"]["parameters"]
    for name in ("train_memory", "train_cpu_request", "num_gpus", "gpu_accelerator", "gpu_node_selector"):
        assert member[name] == {"componentInputParameter": f"pipelinechannel--{name}"}, name
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-op"]
    assert k8s["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"] == "gpu_node_selector"
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in k8s["tolerations"]


def test_every_task_has_resources_and_network_tasks_retry(training, data) -> None:
    for spec, _ in (training, data):
        for label, executor in spec["deploymentSpec"]["executors"].items():
            if label.startswith(("exec-shard-plan-op", "exec-seed-plan-op")):  # a few list items: no resources asked
                continue
            resources = executor["container"]["resources"]
            assert "resourceCpuRequest" in resources and "resourceMemoryRequest" in resources, label
        tasks = _all_tasks(spec)
        for name, task in tasks.items():
            if name in ("ingest-op", "push-op"):
                assert task["retryPolicy"]["maxRetryCount"] == NETWORK_RETRIES, name
                assert task["retryPolicy"]["backoffFactor"] == 2.0
            if "componentRef" in task and task["componentRef"]["name"].endswith("-op"):
                assert task["cachingOptions"]["enableCache"] is True, name


def test_data_pipeline_fans_out_over_planned_shards_and_collects(data) -> None:
    spec = data[0]
    root = spec["root"]["dag"]["tasks"]
    loops = {t["inputs"]["parameters"][t["parameterIterator"]["items"]["inputParameter"]][
        "taskOutputParameter"]["producerTask"]: n for n, t in root.items() if "parameterIterator" in t}
    # Ingest shards, then TFRecord write pieces: each loop iterates over its own shard plan.
    assert set(loops) == {"shard-plan-op", "shard-plan-op-2"}
    merge = root["merge-ingest-shards-op"]
    assert merge["inputs"]["artifacts"]["shards"]["taskOutputArtifact"]["producerTask"] == loops["shard-plan-op"]
    assert spec["components"]["comp-merge-ingest-shards-op"]["inputDefinitions"]["artifacts"][
        "shards"]["isArtifactList"] is True
    assert root["dedupe-op"]["dependentTasks"] == ["merge-ingest-shards-op"]
    assert root["tfrecord-plan-op"]["dependentTasks"] == ["dedupe-op"]
    build = root["tfrecord-merge-op"]
    assert build["inputs"]["artifacts"]["pieces"]["taskOutputArtifact"]["producerTask"] == loops["shard-plan-op-2"]
    assert build["inputs"]["artifacts"]["plan"]["taskOutputArtifact"]["producerTask"] == "tfrecord-plan-op"
    assert spec["components"]["comp-tfrecord-merge-op"]["inputDefinitions"]["artifacts"][
        "pieces"]["isArtifactList"] is True
