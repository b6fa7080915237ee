"""``ecom-kfp validate``: compiled files pass; each kind of breakage is named with its field path.

KFP reads pipeline signatures at definition time, so this module must not use
``from __future__ import annotations`` (string annotations are not types to KFP).
"""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from ecom_kfp import __version__
from ecom_kfp.cli import main
from ecom_kfp.components import ingest_op, shard_plan_op
from ecom_kfp.pipelines.compile import generated_files
from ecom_kfp.pipelines.validate import image_problem, validate_file, validate_text


def _docs(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


def _dump(docs: list[dict]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def _messages(docs: list[dict]) -> list[str]:
    return [str(p) for p in validate_text(_dump(docs), "broken.yaml")]


@pytest.fixture()
def training_docs(compiled_root: Path) -> list[dict]:
    return _docs(compiled_root / "pipelines" / "training_pipeline.yaml")


def test_every_compiled_file_is_valid(compiled_root: Path) -> None:
    files = [compiled_root / p for p in generated_files(compiled_root) if p.suffix == ".yaml"]
    assert len(files) >= 10
    assert [str(p) for f in files for p in validate_file(f)] == []
    assert main(["validate", "--root", str(compiled_root)]) == 0


def test_misspelled_field_is_named(training_docs: list[dict]) -> None:
    task = training_docs[0]["root"]["dag"]["tasks"]["evaluate-op"]
    task["cachingOptionz"] = task.pop("cachingOptions")
    [message] = _messages(training_docs)
    assert "cachingOptionz" in message
    assert "root.dag.tasks[evaluate-op]" in message


def test_misspelled_platform_field_is_named(training_docs: list[dict]) -> None:
    executor = training_docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-op"]
    executor["nodeSelektor"] = executor.pop("nodeSelector")
    [message] = _messages(training_docs)
    assert "nodeSelektor" in message
    assert "platforms.kubernetes.deploymentSpec.executors.exec-train-op" in message


def test_dangling_component_reference_is_named(training_docs: list[dict]) -> None:
    training_docs[0]["root"]["dag"]["tasks"]["evaluate-op"]["componentRef"]["name"] = "comp-evalaute-op"
    [message] = _messages(training_docs)
    assert message.startswith("broken.yaml: root.dag.tasks.evaluate-op.componentRef.name:")
    assert "'comp-evalaute-op' is not defined" in message


def test_dangling_executor_and_dependency_are_named(training_docs: list[dict]) -> None:
    spec = training_docs[0]
    spec["components"]["comp-train-op"]["executorLabel"] = "exec-gone"
    spec["root"]["dag"]["tasks"]["evaluate-op"]["dependentTasks"].append("no-such-task")
    messages = _messages(training_docs)
    assert any("components.comp-train-op.executorLabel: executor 'exec-gone'" in m
               for m in messages)
    assert any("root.dag.tasks.evaluate-op.dependentTasks" in m and "'no-such-task'" in m
               for m in messages)


@pytest.mark.parametrize("image, expected", [
    ("ghcr.io/ecom-kfp/ecom-kfp-gpu:latest", "uses :latest"),
    ("ghcr.io/ecom-kfp/ecom-kfp-gpu", "unpinned"),
    ("ghcr.io/ecom-kfp/ecom-kfp-gpu:0.0.9", "not the package version"),
])
def test_unpinned_images_are_named(training_docs: list[dict], image: str, expected: str) -> None:
    training_docs[0]["deploymentSpec"]["executors"]["exec-train-op"]["container"]["image"] = image
    [message] = _messages(training_docs)
    assert "deploymentSpec.executors.exec-train-op.container.image" in message
    assert expected in message


def test_digest_and_version_pins_pass() -> None:
    assert image_problem(f"ghcr.io/ecom-kfp/ecom-kfp:{__version__}") is None
    assert image_problem("localhost:5000/ecom-kfp@sha256:" + "ab" * 32) is None
    assert "unpinned" in image_problem("localhost:5000/ecom-kfp")


def test_cli_fails_naming_the_file(training_docs: list[dict], tmp_path: Path, capsys) -> None:
    training_docs[0]["deploymentSpec"]["executors"]["exec-push-op"]["container"]["image"] = "python:latest"
    broken = tmp_path / "broken.yaml"
    broken.write_text(_dump(training_docs))
    assert main(["validate", str(broken)]) == 1
    assert f"{broken}: deploymentSpec.executors.exec-push-op.container.image" in capsys.readouterr().err


def test_parameter_resources_directly_in_parallel_for_are_caught(tmp_path: Path) -> None:
    """kfp 2.17 compiles this into a spec that reads an undeclared input; the reason
    data_pipeline wraps each shard's ingest in a small pipeline."""

    @dsl.pipeline(name="resources-in-loop")
    def resources_in_loop(catalog: str, cpu: str = "2"):
        plan = shard_plan_op(num_shards=2)
        with dsl.ParallelFor(plan.output) as index:
            ingest_op(catalog=catalog, shard_index=index, num_shards=2).set_cpu_request(cpu)

    path = tmp_path / "loop.yaml"
    compiler.Compiler().compile(resources_in_loop, str(path))
    [message] = [str(p) for p in validate_file(path)]
    assert "componentInputParameter" in message and "'pipelinechannel--cpu'" in message
