"""``train_op`` in a real ``kfp.local`` pipeline run (its parameters against TrainConfig: tests/test_settings.py).

(No ``from __future__ import annotations``: KFP reads the pipeline's annotations as objects.)
"""

import json
from pathlib import Path

import pytest

from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout
from ecom_kfp.testing.servers import MlflowServer


@pytest.mark.e2e  # a kfp.local run plus training: well over a minute on 2 shared cores
def test_train_op_runs_under_kfp_local(tiny_dataset: DatasetLayout, mlflow: MlflowServer, kfp_local: Path) -> None:
    from kfp import dsl

    from ecom_kfp.components.train import train_op

    @dsl.pipeline(name="train-only")
    def pipeline(data_uri: str, tracking_uri: str) -> dsl.Model:
        data = dsl.importer(artifact_uri=data_uri, artifact_class=dsl.Dataset, reimport=False)
        task = train_op(dataset=data.output, backbone="small-cnn", epochs=1, batch_size=32, dropout=0.1,
                        title_dropout=0.25, level_weights=[1.0, 1.0, 2.0], mlflow_tracking_uri=tracking_uri,
                        experiment_name="component-test")
        return task.outputs["model"]

    run = pipeline(data_uri=tiny_dataset.root, tracking_uri=mlflow.tracking_uri)
    layout = ModelLayout(run.output.path)
    report = json.loads(Path(layout.report).read_text())
    assert report["backbone"] == "small-cnn" and report["epochs_trained"] == 1
    assert Path(layout.saved_model).is_dir() and Path(layout.keras_model).is_file()
    assert report["mlflow_tracking_uri"] == mlflow.tracking_uri
    import mlflow as mlflow_client

    params = mlflow_client.MlflowClient(mlflow.tracking_uri).get_run(report["mlflow_run_id"]).data.params
    assert (params["dropout"], params["title_dropout"], params["level_weights"]) == ("0.1", "0.25", "[1.0, 1.0, 2.0]")
    assert (params["preset"], params["image_size"], params["learning_rate"]) == ("cpu-small", "64", "0.003")
