"""Strict validation of compiled pipeline and component YAML (docs/design.md rule 4).

A file passes when:

1. it parses as YAML with one or two documents;
2. the first parses into ``pipeline_spec_pb2.PipelineSpec`` with ``json_format.ParseDict``
   (unknown fields are errors, so a misspelled field fails), and a second document, when present,
   into ``PlatformSpec``, with every Kubernetes executor config parsed into
   ``KubernetesExecutorConfig`` the same way;
3. every reference resolves: task ``componentRef``, component ``executorLabel``, task
   dependencies, producer tasks and their output keys, the enclosing component's inputs a task
   reads (``componentInputParameter``/``componentInputArtifact``), DAG output selectors, and
   the executors the platform spec configures;
4. every container image is pinned, to this package's version as the tag or to a digest, and
   none is ``:latest``.

Each problem names the file and the field path, e.g.
``pipelines/training_pipeline.yaml: root.dag.tasks.train.componentRef.name: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from ecom_kfp import __version__

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Problem:
    """One validation failure: the file, the field path inside it, and what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


def image_problem(image: str, version: str = __version__) -> str | None:
    """Why ``image`` is not pinned, or None when it is (tag == ``version``, or a digest)."""
    if DIGEST.search(image):
        return None
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag:
        return f"image {image!r} is unpinned: no tag or digest (pin :{version} or @sha256:...)"
    if tag == "latest":
        return f"image {image!r} uses :latest; pin :{version} or a digest"
    if tag != version:
        return (f"image {image!r} has tag {tag!r}, not the package version {version!r} "
                f"(or pin a digest)")
    return None


def _parse_strict(doc: Any, message: Any, what: str) -> str | None:
    if not isinstance(doc, dict):
        return f"{what} must be a mapping, got {type(doc).__name__}"
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        return f"not a valid {what}: {exc}"
    return None


def _names(mapping: dict, *keys: str) -> dict:
    for key in keys:
        mapping = (mapping or {}).get(key) or {}
    return mapping


def _known(names: Any) -> str:
    return ", ".join(sorted(names)) or "none"


def _check_task(spec: dict, owner: dict, tasks: dict, task_name: str, task: dict,
                path: str) -> Iterator[tuple[str, str]]:
    """References of one DAG task; ``owner`` is the component whose DAG holds it."""
    components = spec.get("components") or {}
    ref = _names(task, "componentRef").get("name")
    if ref not in components:
        yield (f"{path}.componentRef.name",
               f"component {ref!r} is not defined under components (known: {_known(components)})")
    for dep in task.get("dependentTasks") or []:
        if dep not in tasks:
            yield (f"{path}.dependentTasks",
                   f"depends on task {dep!r}, which is not in this DAG (tasks: {_known(tasks)})")
    for kind, producer_key, output_key in (("parameters", "taskOutputParameter",
                                            "outputParameterKey"),
                                           ("artifacts", "taskOutputArtifact",
                                            "outputArtifactKey")):
        declared = _names(owner, "inputDefinitions", kind)
        for input_name, binding in _names(task, "inputs", kind).items():
            where = f"{path}.inputs.{kind}.{input_name}"
            if producer_key in binding:
                producer = binding[producer_key].get("producerTask")
                key = binding[producer_key].get(output_key)
                if producer not in tasks:
                    yield (f"{where}.{producer_key}.producerTask",
                           f"producer task {producer!r} is not in this DAG (tasks: {_known(tasks)})")
                    continue
                producer_ref = _names(tasks[producer], "componentRef").get("name")
                outputs = _names(components.get(producer_ref) or {}, "outputDefinitions", kind)
                if producer_ref in components and key not in outputs:
                    yield (f"{where}.{producer_key}.{output_key}",
                           f"task {producer!r} has no output {key!r} (outputs: {_known(outputs)})")
            for reader in ("componentInputParameter", "componentInputArtifact"):
                if reader in binding and binding[reader] not in declared:
                    yield (f"{where}.{reader}",
                           f"reads input {binding[reader]!r}, which the enclosing component does "
                           f"not declare (inputs: {_known(declared)})")
    items = _names(task, "parameterIterator", "items").get("inputParameter")
    if items is not None and items not in _names(task, "inputs", "parameters"):
        yield (f"{path}.parameterIterator.items.inputParameter",
               f"iterates over {items!r}, which is not an input of this task")


def _check_dag_outputs(dag: dict, tasks: dict, path: str) -> Iterator[tuple[str, str]]:
    for kind, selectors in (("artifacts", "artifactSelectors"),
                            ("parameters", "valueFromParameter")):
        for name, output in _names(dag, "outputs", kind).items():
            chosen = output.get(selectors)
            for selector in chosen if isinstance(chosen, list) else [chosen] if chosen else []:
                if selector.get("producerSubtask") not in tasks:
                    yield (f"{path}.dag.outputs.{kind}.{name}",
                           f"selects from task {selector.get('producerSubtask')!r}, which is not "
                           f"in this DAG (tasks: {_known(tasks)})")


def _check_references(spec: dict) -> Iterator[tuple[str, str]]:
    executors = _names(spec, "deploymentSpec", "executors")
    owners = {f"components.{name}": comp for name, comp in (spec.get("components") or {}).items()}
    owners["root"] = spec.get("root") or {}
    for path, component in owners.items():
        label = component.get("executorLabel")
        if label is not None and label not in executors:
            yield (f"{path}.executorLabel",
                   f"executor {label!r} is not defined under deploymentSpec.executors "
                   f"(known: {_known(executors)})")
        dag = component.get("dag")
        if dag is None:
            continue
        tasks = dag.get("tasks") or {}
        for task_name, task in tasks.items():
            yield from _check_task(spec, component, tasks, task_name, task,
                                   f"{path}.dag.tasks.{task_name}")
        yield from _check_dag_outputs(dag, tasks, path)


def _check_images(spec: dict) -> Iterator[tuple[str, str]]:
    for label, executor in _names(spec, "deploymentSpec", "executors").items():
        image = _names(executor, "container").get("image")
        if image is not None:
            problem = image_problem(image)
            if problem:
                yield f"deploymentSpec.executors.{label}.container.image", problem


def _check_platform(platform: dict, spec: dict) -> Iterator[tuple[str, str]]:
    problem = _parse_strict(platform, pipeline_spec_pb2.PlatformSpec(), "PlatformSpec")
    if problem:
        yield "(platform spec)", problem
        return
    executors = _names(spec, "deploymentSpec", "executors")
    for platform_name, single in (platform.get("platforms") or {}).items():
        for label, config in _names(single, "deploymentSpec", "executors").items():
            path = f"platforms.{platform_name}.deploymentSpec.executors.{label}"
            if label not in executors:
                yield (path, f"configures executor {label!r}, which the pipeline spec does not "
                             f"define (known: {_known(executors)})")
            if platform_name == "kubernetes":
                problem = _parse_strict(config, kubernetes_executor_config_pb2
                                        .KubernetesExecutorConfig(), "KubernetesExecutorConfig")
                if problem:
                    yield path, problem


def validate_text(text: str, file: str) -> list[Problem]:
    """Validate the YAML ``text`` of a compiled pipeline or component; ``file`` names it."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [Problem(file, "(yaml)", f"not valid YAML: {exc}")]
    if not docs or len(docs) > 2:
        return [Problem(file, "(yaml)", f"expected a PipelineSpec document and at most one "
                                        f"platform spec document, found {len(docs)} documents")]
    spec = docs[0]
    problem = _parse_strict(spec, pipeline_spec_pb2.PipelineSpec(), "PipelineSpec")
    if problem:
        return [Problem(file, "(pipeline spec)", problem)]
    found = [*_check_references(spec), *_check_images(spec)]
    if len(docs) == 2:
        found += _check_platform(docs[1], spec)
    return [Problem(file, field, message) for field, message in found]


def validate_file(path: Path) -> list[Problem]:
    """Validate one YAML file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        return [Problem(str(path), "(file)", f"cannot read: {exc}")]
    return validate_text(text, str(path))
