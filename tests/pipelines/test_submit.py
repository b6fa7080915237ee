"""``ecom-kfp submit``: parameters from flags and a file, checked, sent through ``kfp.Client``.

No Kubeflow Pipelines API server can run here (it needs Kubernetes, MySQL and Argo); the endpoint
is a loopback HTTP server answering the same REST calls (see ``kfp_api.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ecom_kfp.cli import main
from ecom_kfp.pipelines.submit import ParameterError, check_params, declared_parameters, parse_params, submit

from .kfp_api import kfp_api_server


@pytest.fixture()
def training_yaml(compiled_root: Path) -> str:
    return str(compiled_root / "pipelines" / "training_pipeline.yaml")


def test_flags_override_file_and_values_are_typed(tmp_path: Path) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text("catalog: gs://b/catalog.jsonl\nepochs: 5\n")
    params = parse_params(["epochs=3", "gpu_node_selector={pool: a100}", "column_map=", "seeds=[0, 1]"],
                          str(params_file))
    assert params == {"catalog": "gs://b/catalog.jsonl", "epochs": 3,
                      "gpu_node_selector": {"pool": "a100"}, "column_map": "", "seeds": [0, 1]}


@pytest.mark.parametrize("params, expected", [
    ({"catalog": "x", "epohcs": 3}, "--param epohcs: the pipeline has no such parameter"),
    ({"catalog": "x", "epochs": "many"}, "--param epochs='many': expected NUMBER_INTEGER"),
    ({"catalog": "x", "gpu_node_selector": "a100"}, "expected STRUCT"),
    ({"catalog": "x", "seeds": 1}, "--param seeds=1: expected LIST"),
    ({"epochs": 3}, "missing required parameter(s): catalog"),
])
def test_bad_parameters_are_named(training_yaml: str, params: dict, expected: str) -> None:
    with pytest.raises(ParameterError) as error:
        check_params(params, declared_parameters(training_yaml))
    assert expected in str(error.value)


def test_number_given_for_a_string_parameter_stays_text(training_yaml: str) -> None:
    checked = check_params({"catalog": "x", "cpu_request": 4}, declared_parameters(training_yaml))
    assert checked["cpu_request"] == "4"


def test_malformed_param_flag_fails_fast() -> None:
    with pytest.raises(ParameterError, match="expected NAME=VALUE"):
        parse_params(["epochs"])


@pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")
def test_submit_creates_experiment_once_and_sends_spec_and_parameters(training_yaml: str) -> None:
    with kfp_api_server() as (host, state):
        first = submit(host, training_yaml, {"catalog": "gs://b/c.jsonl", "epochs": 3},
                       experiment="catalog-nightly", run_name="nightly-1")
        second = submit(host, training_yaml, {"catalog": "gs://b/c.jsonl"},
                        experiment="catalog-nightly", enable_caching=False,
                        service_account="ecom-kfp-runner")
    assert (first.run_id, second.run_id) == ("run-1", "run-2")
    assert [e["display_name"] for e in state.experiments] == ["catalog-nightly"]
    run = state.runs[0]
    assert run["display_name"] == "nightly-1"
    assert run["experiment_id"] == "exp-1"
    assert run["runtime_config"]["parameters"] == {"catalog": "gs://b/c.jsonl", "epochs": 3}
    spec = next(iter(yaml.safe_load_all(Path(training_yaml).read_text())))
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"] == spec["pipelineInfo"]
    assert "service_account" not in state.runs[0] or not state.runs[0]["service_account"]
    assert state.runs[1]["service_account"] == "ecom-kfp-runner"
    caching = [t["cachingOptions"] for t in
               state.runs[1]["pipeline_spec"]["pipeline_spec"]["root"]["dag"]["tasks"].values()]
    assert caching and all(not c.get("enableCache") for c in caching)


@pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")
def test_submit_cli(training_yaml: str, tmp_path: Path, capsys) -> None:
    with kfp_api_server() as (host, state):
        code = main(["submit", "--host", host, "--pipeline", training_yaml,
                     "--param", "catalog=gs://b/c.jsonl", "--report-dir", str(tmp_path)])
        bad = main(["submit", "--host", host, "--pipeline", training_yaml, "--param", "epochs=2"])
    assert code == 0 and bad == 2
    assert len(state.runs) == 1
    out = capsys.readouterr()
    assert "run run-1" in out.out and "missing required parameter(s): catalog" in out.err
    assert (tmp_path / "report.json").exists()
