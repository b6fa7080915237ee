"""A real ``horovodrun --gloo -np 2 -H localhost:2`` training run on the tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout
from ecom_kfp.train.config import TrainConfig
from ecom_kfp.train.stage import run
from tests.train.helpers import SPLIT_SIZES, backbone_weights

pytestmark = pytest.mark.e2e


def test_two_horovod_processes_train_in_lock_step(tiny_dataset: DatasetLayout, tmp_path: Path, capfd) -> None:
    out = tmp_path / "model"
    report = run(TrainConfig(data=tiny_dataset.root, out=str(out), backbone="small-cnn", epochs=3, batch_size=8,
                             image_size=32, learning_rate=2e-3, warmup_epochs=1, num_processes=2))
    # The workers print to this process's descriptors; only the chief's epoch lines are relayed,
    # each once, through the relay file.
    relayed = [line for line in capfd.readouterr().out.splitlines() if line.startswith("  epoch ")]
    assert [line.split(":")[0] for line in relayed] == ["  epoch 1/3", "  epoch 2/3", "  epoch 3/3"], relayed
    assert report.num_processes == 2 and report.global_batch_size == 16
    assert report.steps_per_epoch == 96 // 16
    assert report.peak_learning_rate == pytest.approx(4e-3)

    ranks = sorted(report.per_rank, key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1]
    # Averaged gradients, broadcast initial weights and synced BatchNorm statistics: bit-identical.
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    # Each rank saw its own shard, so its own metrics differ; the logged figure is their mean.
    local = [r["last_epoch_metrics"] for r in ranks]
    assert local[0]["loss"] != local[1]["loss"]
    for key in ("loss", "level_3_accuracy", "val_loss"):
        assert report.final_metrics[key] == pytest.approx((local[0][key] + local[1][key]) / 2, rel=1e-6)
    history = json.loads(Path(ModelLayout(str(out)).history).read_text())
    assert history["loss"][-1] < history["loss"][0]
    assert all(r["examples_per_second"] > 0 for r in ranks)

    # Only rank 0 wrote: one report, one MLflow run in the local store.
    from mlflow.tracking import MlflowClient

    assert json.loads((out / "report.json").read_text())["mlflow_run_id"] == report.mlflow_run_id
    client = MlflowClient(report.mlflow_tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("ecom-kfp").experiment_id])
    assert [r.info.run_id for r in runs] == [report.mlflow_run_id]
    assert Path(ModelLayout(str(out)).saved_model).is_dir()


def test_two_horovod_processes_fit_on_train_and_val(tiny_dataset: DatasetLayout, tmp_path: Path) -> None:
    """``--fit-on-val`` under two ranks: both step through train + val in lock-step, nothing validates."""
    report = run(TrainConfig(data=tiny_dataset.root, out=str(tmp_path / "model"), backbone="small-cnn", epochs=1,
                             batch_size=8, image_size=32, num_processes=2, fit_on_val=True))
    assert report.fit_splits == ["train", "val"] and report.steps_per_epoch == (SPLIT_SIZES["train"] + SPLIT_SIZES["val"]) // 16
    ranks = sorted(report.per_rank, key=lambda r: r["rank"])
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert not [key for key in report.final_metrics if key.startswith("val_")]


def test_two_horovod_processes_train_late_fusion_on_frozen_features(tiny_dataset: DatasetLayout, tmp_path: Path) -> None:
    """``--frozen-backbone`` under two ranks, with ``--fusion late``: each computes the features of its
    own shards, both step through the same number of batches, the branch heads' gradients are
    averaged like any others (identical weights), and the backbone comes out as it was loaded."""
    import keras
    import numpy as np

    from ecom_kfp.train.model import BACKBONE_LAYER

    backbone, weights = backbone_weights(tmp_path, 32)
    out = tmp_path / "model"
    report = run(TrainConfig(data=tiny_dataset.root, out=str(out), backbone="small-cnn", epochs=2, batch_size=8,
                             image_size=32, num_processes=2, weights=weights, frozen_backbone=True, fusion="late"))
    assert report.steps_per_epoch == 96 // 16 and report.epochs_trained == 2 and report.backbone_feature_seconds > 0
    ranks = sorted(report.per_rank, key=lambda r: r["rank"])
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["last_epoch_metrics"]["loss"] != ranks[1]["last_epoch_metrics"]["loss"]
    exported = keras.models.load_model(ModelLayout(str(out)).keras_model).get_layer(BACKBONE_LAYER)
    for after, before in zip(exported.weights, backbone.weights, strict=True):
        assert np.array_equal(after.numpy(), before.numpy()), after.path
