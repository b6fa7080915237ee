"""evaluate_op and push_op in a real kfp.local pipeline run (SubprocessRunner, no venv)."""
# No "from __future__ import annotations": KFP reads the pipeline function's annotations as types.


import pytest
from kfp import dsl

from ecom_kfp import uri
from ecom_kfp.components import evaluate_op, push_op
from ecom_kfp.evaluate.baseline import registry_client
from ecom_kfp.push.serving import read_latest


@pytest.mark.e2e
def test_evaluate_then_push_under_a_blessing_condition(mlflow, good_model, tiny_dataset, tmp_path, kfp_local):
    serving = str(tmp_path / "serving")
    name = "kfp-local-model"

    # kfp.local resolves a condition on a named output of a task ("evaluate-op-blessed") as a parent
    # input and fails to find it; a condition on a sub-pipeline's input resolves, and compiles the same.
    @dsl.pipeline(name="push-if-blessed")
    def push_if_blessed(blessed: bool, model: dsl.Input[dsl.Model], evaluation: dsl.Input[dsl.Artifact],
                        tracking_uri: str, serving_uri: str):
        with dsl.If(blessed == True):  # noqa: E712 (KFP condition syntax)
            push_op(model=model, evaluation=evaluation, registry_uri=tracking_uri, serving_uri=serving_uri,
                    registered_model_name=name)

    @dsl.pipeline(name="evaluate-push")
    def pipeline(model_uri: str, data_uri: str, tracking_uri: str, serving_uri: str):
        model = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=False)
        data = dsl.importer(artifact_uri=data_uri, artifact_class=dsl.Dataset, reimport=False)
        evaluation = evaluate_op(model=model.output, dataset=data.output, mlflow_tracking_uri=tracking_uri,
                                 registered_model_name=name)
        push_if_blessed(blessed=evaluation.outputs["blessed"], model=model.output,
                        evaluation=evaluation.outputs["evaluation"], tracking_uri=tracking_uri,
                        serving_uri=serving_uri)

    pipeline(model_uri=good_model.root, data_uri=tiny_dataset.root, tracking_uri=mlflow.tracking_uri,
             serving_uri=serving)
    assert read_latest(serving, name)["version"] == "1"
    assert registry_client(mlflow.tracking_uri).get_model_version_by_alias(name, "champion").version == "1"
    htmls = [p for p in uri.list_files(str(kfp_local), suffix="report") if "evaluate-op" in p]
    assert htmls, "the HTML report artifact was not written"
