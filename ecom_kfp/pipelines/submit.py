"""Submit a compiled pipeline to a Kubeflow Pipelines endpoint with ``kfp.Client``.

Run parameters come from a YAML file (``--params-file``) and ``--param k=v`` flags (flags win);
each value is read as a YAML scalar or flow collection, so ``epochs=3`` is an int and
``gpu_node_selector={pool: a100}`` a dict. They are checked against the pipeline's declared
inputs before anything is sent, so a typo fails here with the parameter's name rather than as a
failed run on the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: PipelineSpec ``parameterType`` -> Python types a value of it may have.
PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
}


class ParameterError(ValueError):
    """A run parameter that does not fit the pipeline; the message names it."""


def parse_params(pairs: list[str], params_file: str | None = None) -> dict[str, Any]:
    """Merge ``--params-file`` (a YAML mapping) with ``--param k=v`` flags (flags win)."""
    params: dict[str, Any] = {}
    if params_file:
        try:
            loaded = yaml.safe_load(Path(params_file).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ParameterError(f"--params-file {params_file}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ParameterError(f"--params-file {params_file}: expected a mapping of parameter "
                                 f"names to values, got {type(loaded).__name__}")
        params.update(loaded)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--param {pair!r}: expected NAME=VALUE")
        try:
            params[name] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise ParameterError(f"--param {pair!r}: value is not valid YAML: {exc}") from exc
    return params


def declared_parameters(pipeline_file: str) -> dict[str, dict]:
    """``root.inputDefinitions.parameters`` of a compiled pipeline."""
    spec = next(iter(yaml.safe_load_all(Path(pipeline_file).read_text())))
    return ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}


def check_params(params: dict[str, Any], declared: dict[str, dict]) -> dict[str, Any]:
    """Fail on unknown names, wrong types and missing required parameters.

    A value declared as a string but given as a number (``catalog_format=1``) is turned back into
    a string, since YAML guessed the type and the user meant the text.
    """
    checked: dict[str, Any] = {}
    for name, value in params.items():
        if name not in declared:
            raise ParameterError(f"--param {name}: the pipeline has no such parameter "
                                 f"(parameters: {', '.join(sorted(declared))})")
        kind = declared[name].get("parameterType", "STRING")
        if kind == "STRING" and isinstance(value, (int, float, bool)):
            value = str(value)
        allowed = PARAMETER_TYPES.get(kind, (object,))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ParameterError(f"--param {name}={value!r}: expected {kind}, "
                                 f"got {type(value).__name__}")
        checked[name] = value
    missing = [n for n, d in declared.items() if not d.get("isOptional") and n not in checked]
    if missing:
        raise ParameterError(f"missing required parameter(s): {', '.join(sorted(missing))} "
                             f"(pass --param NAME=VALUE)")
    return checked


@dataclass(frozen=True)
class Submission:
    """What the endpoint answered."""

    host: str
    run_id: str
    experiment: str
    run_name: str
    parameters: dict[str, Any]


def submit(host: str, pipeline_file: str, params: dict[str, Any], *,
           experiment: str = "ecom-kfp", run_name: str | None = None,
           namespace: str | None = None, enable_caching: bool | None = None,
           service_account: str | None = None) -> Submission:
    """Create a run of ``pipeline_file`` on the KFP endpoint ``host``.

    Args:
        host: KFP API endpoint, e.g. ``http://ml-pipeline-ui.kubeflow:80``.
        pipeline_file: Compiled pipeline YAML.
        params: Run parameters (checked against the pipeline's inputs).
        experiment: Experiment name; created when missing.
        run_name: Run display name (KFP makes one from the file name when None).
        namespace: Kubernetes namespace (multi-user deployments).
        enable_caching: None keeps the compiled setting (on); False reruns every task.
        service_account: Kubernetes service account the run's pods use (``ecom-kfp-runner`` from
            ``manifests/`` may create MPIJobs); None uses the namespace default.
    """
    import kfp

    checked = check_params(params, declared_parameters(pipeline_file))
    client = kfp.Client(host=host, namespace=namespace or "kubeflow")
    result = client.create_run_from_pipeline_package(
        pipeline_file, arguments=checked, run_name=run_name, experiment_name=experiment,
        namespace=namespace, enable_caching=enable_caching, service_account=service_account)
    return Submission(host=host, run_id=result.run_id, experiment=experiment,
                      run_name=run_name or "", parameters=checked)
