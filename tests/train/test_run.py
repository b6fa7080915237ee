"""A single-process training run on the tiny dataset: outputs, MLflow, resume, serving, errors."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecom_kfp import cli
from ecom_kfp.contracts import serving
from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout
from ecom_kfp.contracts.training import TrainingRecord
from ecom_kfp.testing.servers import MlflowServer
from ecom_kfp.train import TrainConfig, TrainReport, run
from ecom_kfp.train.callbacks import CHECKPOINT_STATE
from ecom_kfp.train.config import ConfigError
from ecom_kfp.train.data import DatasetError
from ecom_kfp.train.model import ProductClassifier
from ecom_kfp.train.tracking import EXPORTED_ENV, TRACKING_URI_ENV, _create_experiment, artifact_location, experiment_id
from tests.train.helpers import SPLIT_SIZES

pytestmark = pytest.mark.slow

EPOCHS = 3
#: The module's trained model also exercises the word- and character-hash title inputs, weight EMA,
#: smoothing and auxiliary image heads.
WORD_BUCKETS = 64
CHAR_BUCKETS = 128


def _config(data: str, out: Path, **overrides) -> TrainConfig:
    base = dict(data=data, out=str(out), backbone="small-cnn", epochs=EPOCHS, batch_size=16, image_size=32,
                learning_rate=3e-3, warmup_epochs=0.5)
    return TrainConfig(**{**base, **overrides})


def _counted(step, name: str, traces: Counter):
    def counted(self, data):
        traces[name] += 1
        return step(self, data)
    return counted


@pytest.fixture(scope="module")
def traced_run(tiny_dataset: DatasetLayout, mlflow: MlflowServer,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainReport, Counter]:
    """The module's run, and how many times it traced each step function (a trace is a Python call)."""
    out = tmp_path_factory.mktemp("train") / "model"
    traces: Counter = Counter()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("train_step", "test_step"):
            patch.setattr(ProductClassifier, name, _counted(getattr(ProductClassifier, name), name, traces))
        report = run(_config(tiny_dataset.root, out, mlflow_tracking_uri=mlflow.tracking_uri,
                             experiment_name="train-test", title_word_buckets=WORD_BUCKETS,
                             title_char_buckets=CHAR_BUCKETS, ema_momentum=0.9, label_smoothing=0.1,
                             image_head_weight=0.5))
    return report, traces


@pytest.fixture(scope="module")
def trained(traced_run: tuple[TrainReport, Counter]) -> TrainReport:
    return traced_run[0]


def test_each_step_is_traced_once(traced_run: tuple[TrainReport, Counter]) -> None:
    """Keras creates the optimizer's, losses' and metrics' variables inside the first trace unless
    they exist (trainer.build_step_state), and TensorFlow traces such a function twice."""
    assert traced_run[1] == {"train_step": 1, "test_step": 1}


def test_run_writes_the_model_layout(trained: TrainReport) -> None:
    layout = ModelLayout(trained.out)
    for path in (layout.saved_model, layout.keras_model, layout.history, layout.manifest, layout.report):
        assert os.path.exists(path), path
    # what evaluate decides on is inside the digests, not only in the run summary
    assert TrainingRecord.read(layout) == TrainingRecord(("train",))
    assert "training.json" in json.loads(Path(layout.digests).read_text())["files"]
    assert sorted(os.listdir(layout.labels)) == ["level_1.txt", "level_2.txt", "level_3.txt"]
    history = json.loads(Path(layout.history).read_text())
    assert len(history["loss"]) == EPOCHS and history["loss"][-1] < history["loss"][0]
    report = json.loads(Path(layout.report).read_text())
    assert report["mlflow_run_id"] == trained.mlflow_run_id
    assert report["epochs_trained"] == EPOCHS and report["num_processes"] == 1 and report["fit_splits"] == ["train"]
    assert report["examples_per_second"] > 0 and report["timings"]["fit"] > 0
    assert set(report["test_metrics"]) >= {"level_1_accuracy", "level_2_accuracy", "level_3_accuracy",
                                           "image_level_3_accuracy"}
    assert "val_image_level_3_accuracy" in history
    assert report["embedding_rows_from_doc2vec"] > 0
    assert (report["preset"], report["precision"], report["jit_compile"]) == ("cpu-small", "float32", False)
    assert report["level_weights"] == [1.0, 1.0, 3.0]


def test_run_logs_params_metrics_and_artifacts_to_mlflow(trained: TrainReport, mlflow: MlflowServer) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow.tracking_uri)
    run_ = client.get_run(trained.mlflow_run_id)
    assert run_.info.status == "FINISHED"
    assert run_.data.params["backbone"] == "small-cnn" and run_.data.params["num_processes"] == "1"
    assert (run_.data.params["preset"], run_.data.params["precision"]) == ("cpu-small", "float32")
    losses = client.get_metric_history(trained.mlflow_run_id, "loss")
    assert [m.step for m in losses] == list(range(EPOCHS))
    assert losses[-1].value == pytest.approx(trained.final_metrics["loss"])
    artifacts = {a.path for a in client.list_artifacts(trained.mlflow_run_id)}
    assert {"saved_model", "labels", "model.keras", "history.json", "dataset_manifest.json", "training.json",
            "digests.json", "report.json"} <= artifacts


SERVE_SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops the signature uses
model = tf.saved_model.load(sys.argv[1])
signature = model.signatures[sys.argv[2]]
images = [open(p, "rb").read() for p in sys.argv[3].split(",")]
titles = sys.argv[4].split("|")
out = signature(**{sys.argv[5]: tf.constant(images), sys.argv[6]: tf.constant(titles)})
print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))
"""


def test_saved_model_serves_raw_jpeg_bytes_and_titles_in_a_fresh_process(trained: TrainReport, tmp_path: Path,
                                                                          shop_product) -> None:
    """Raw JPEGs of sizes unlike the 40 px stored / 32 px model images, titles as a shop has them."""
    import keras
    import tensorflow as tf

    from ecom_kfp.contracts.features import decode_and_resize
    from ecom_kfp.train.text import TitleTokenizer

    paths, titles = [], []
    for leaf, size in ((0, (90, 120)), (4, (64, 48))):
        jpeg, title = shop_product(leaf, size)
        path = tmp_path / f"p{leaf}.jpg"
        path.write_bytes(jpeg)
        paths.append(str(path))
        titles.append(title)
    assert Image.open(io.BytesIO(Path(paths[0]).read_bytes())).size == (90, 120)
    layout = ModelLayout(trained.out)
    completed = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, layout.saved_model, serving.SIGNATURE, ",".join(paths), "|".join(titles),
         serving.INPUT_IMAGE, serving.INPUT_TITLE],
        capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    assert sorted(served) == [serving.output_key(k) for k in (1, 2, 3)]

    # The same prediction through model.keras and the training-time preprocessing.
    model = keras.models.load_model(layout.keras_model)
    tokenizer = TitleTokenizer(DatasetLayout(trained.data).spm_model, 32, WORD_BUCKETS, CHAR_BUCKETS)
    images = tf.stack([decode_and_resize(tf.constant(Path(p).read_bytes()), trained.image_size) for p in paths])
    expected = model({"image": images, **tokenizer.model_inputs(tf.constant(titles))})
    for k in (1, 2, 3):
        got = np.array(served[serving.output_key(k)])
        assert got.shape == (2, trained.num_classes[k - 1])
        np.testing.assert_allclose(got, np.asarray(expected[f"level_{k}"]), rtol=1e-4, atol=1e-5)


def test_rerun_resumes_from_the_last_checkpoint(tiny_dataset: DatasetLayout, tmp_path: Path, capsys,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EXPORTED_ENV:
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "model"
    first = run(_config(tiny_dataset.root, out, epochs=1))
    assert first.resumed_from_epoch == 0 and first.epochs_trained == 1
    second = run(_config(tiny_dataset.root, out, epochs=2))
    assert second.resumed_from_epoch == 1 and second.epochs_trained == 1
    # One short line per epoch trained, counted from the epoch resumed (Keras' own lines are off).
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["  epoch 1/1", "  epoch 2/2"], lines
    assert re.fullmatch(r"  epoch 2/2: loss \d+\.\d{3}, level 3 accuracy \d\.\d{3}, val level 3 accuracy "
                        r"\d\.\d{3} \(\d+s\)", lines[1]), lines[1]
    assert second.mlflow_tracking_uri.startswith("sqlite:///") and (out / "mlflow.db").exists()
    assert any((out / "mlartifacts").rglob("report.json"))  # artifacts beside the store, not in the cwd
    # MLflow exported the store and the experiment id for child processes; a later child of this
    # process would have started its runs in that experiment of another store.
    assert {name: os.environ.get(name) for name in EXPORTED_ENV} == dict.fromkeys(EXPORTED_ENV)


def test_a_gcs_output_without_a_tracking_store_is_refused_before_training(
        tiny_dataset: DatasetLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local store would stay in a temporary directory of the training pod and be lost."""
    monkeypatch.delenv(TRACKING_URI_ENV, raising=False)
    with pytest.raises(ConfigError, match=r"--mlflow-tracking-uri is empty.*--out gs://bucket/model"):
        run(_config(tiny_dataset.root, "gs://bucket/model", epochs=1))  # no bucket needed: nothing is written


@pytest.mark.parametrize("store, artifacts", [
    ("sqlite:////srv/runs/mlflow.db", "file:///srv/runs/mlartifacts"),
    ("http://127.0.0.1:5000", None),
    ("sqlite://", None),
])
def test_a_sqlite_stores_artifacts_go_beside_its_database_file(store: str, artifacts: str | None) -> None:
    assert artifact_location(store) == artifacts


def test_members_starting_together_share_their_experiment(mlflow: MlflowServer) -> None:
    """The seeds of one training_pipeline run start at once, and on an experiment's first run each
    finds it missing: creating it a second time (what the later member does) is not an error."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow.tracking_uri)
    created = [_create_experiment(client, "members-start-together", None) for _ in range(2)]
    assert client.get_experiment_by_name("members-start-together") is not None
    assert created[0] == created[1] == experiment_id(client, "members-start-together")


def test_resuming_with_a_different_model_names_the_flags(tiny_dataset: DatasetLayout, tmp_path: Path) -> None:
    # Title-only models (the cheapest to train) differing in their word-hash table.
    out = tmp_path / "model"
    run(_config(tiny_dataset.root, out, epochs=1, inputs="title"))
    with pytest.raises(ConfigError, match="holds a checkpoint of a different model.*--no-resume"):
        run(_config(tiny_dataset.root, out, epochs=2, inputs="title", title_word_buckets=WORD_BUCKETS))
    assert run(_config(tiny_dataset.root, out, epochs=1, inputs="title", title_word_buckets=WORD_BUCKETS,
                       resume=False)).resumed_from_epoch == 0


def test_resuming_after_switching_fit_on_val_is_refused(tiny_dataset: DatasetLayout, tmp_path: Path) -> None:
    out = tmp_path / "model"
    run(_config(tiny_dataset.root, out, epochs=1, inputs="title"))
    assert json.loads((out / CHECKPOINT_STATE).read_text())["fit_splits"] == ["train"]
    with pytest.raises(ConfigError, match=r"trained on train \(epoch 1\); this run trains on train \+ val.*--fit-on-val"):
        run(_config(tiny_dataset.root, out, epochs=2, inputs="title", fit_on_val=True))
    assert run(_config(tiny_dataset.root, out, epochs=1, inputs="title", fit_on_val=True,
                       resume=False)).resumed_from_epoch == 0


def _broken_copy(tiny_dataset: DatasetLayout, tmp_path: Path) -> Path:
    copy = tmp_path / "dataset"
    shutil.copytree(tiny_dataset.root, copy)
    return copy


@pytest.mark.parametrize("damage, message", [
    (lambda d: shutil.rmtree(d), "no manifest.json"),
    (lambda d: (d / "manifest.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "manifest.json").write_text(json.dumps({"counts": {}})), "lacks 'feature_spec'"),
    (lambda d: (d / "text" / "spm.model").unlink(), "text/spm.model is missing"),
    (lambda d: (d / "labels" / "level_2.txt").unlink(), "label vocabularies unusable"),
    (lambda d: shutil.rmtree(d / "train"), "no train/"),
])
def test_broken_dataset_fails_fast_naming_the_flag(tiny_dataset: DatasetLayout, tmp_path: Path, damage, message) -> None:
    data = _broken_copy(tiny_dataset, tmp_path)
    damage(data)
    with pytest.raises(DatasetError, match=message) as err:
        run(_config(str(data), tmp_path / "out"))
    assert f"--data {data}" in str(err.value)


def test_truncated_shard_is_reported_against_the_flag(tiny_dataset: DatasetLayout, tmp_path: Path) -> None:
    data = _broken_copy(tiny_dataset, tmp_path)
    shard = data / "train" / "part-00000-of-00002.tfrecord.gz"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(DatasetError, match="corrupt") as err:
        run(_config(str(data), tmp_path / "out", epochs=1))
    assert "--data" in str(err.value)


def test_cli_reports_bad_flags_and_exits_nonzero(tiny_dataset: DatasetLayout, tmp_path: Path, capsys) -> None:
    assert cli.main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "--data" in capsys.readouterr().err
    assert cli.main(["train", "--data", tiny_dataset.root, "--out", str(tmp_path / "o"), "--epochs", "-1"]) == 2
    assert "--epochs=-1: must be > 0 (0 = the preset's)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli.main(["train", "--data", tiny_dataset.root, "--out", str(tmp_path / "o"), "--level-weights", "1,x"])
    assert usage.value.code == 2 and "--level-weights" in capsys.readouterr().err


def test_config_rejects_values_naming_the_flag() -> None:
    cases = [
        (dict(backbone="vgg"), "--backbone='vgg': choose from small-cnn"),
        (dict(dropout=1.5), "--dropout=1.5: must be in [0, 1)"),
        (dict(title_dropout=1.0), "--title-dropout=1.0: must be in [0, 1)"),
        (dict(ema_momentum=1.0), "--ema-momentum=1.0: must be in [0, 1) (0 = off)"),
        (dict(label_smoothing=-0.1), "--label-smoothing=-0.1: must be in [0, 1)"),
        (dict(image_head_weight=-1.0), "--image-head-weight=-1.0: must be >= 0"),
        (dict(inputs="title", image_head_weight=0.5), "--image-head-weight=0.5: needs --inputs fused, got title"),
        (dict(inputs="image", title_dropout=0.3), "--title-dropout=0.3: needs --inputs fused, got image"),
        (dict(title_word_buckets=-1), "--title-word-buckets=-1: must be >= 0"),
        (dict(title_char_buckets=-1), "--title-char-buckets=-1: must be >= 0"),
        (dict(precision="float64"), "--precision='float64': choose from auto, float32"),
        (dict(launcher="slurm"), "--launcher='slurm': choose from local, horovodrun, mpijob"),
        (dict(preset="tpu"), "--preset='tpu': choose from cpu-small, gpu"),
        (dict(level_weights=[0.0, 0.0]), "--level-weights=[0.0, 0.0]: must be >= 0, not all zero"),
        (dict(inputs="title", weights="w.h5"), "--weights='w.h5': needs an image backbone"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError) as err:
            TrainConfig(data="d", out="o", **overrides)
        assert message in str(err.value), (overrides, str(err.value))


def test_np_above_one_without_horovod_says_how_to_get_it(monkeypatch, tiny_dataset: DatasetLayout, tmp_path: Path) -> None:
    """Simulates a machine without Horovod by hiding the module (it is installed here)."""
    monkeypatch.setitem(sys.modules, "horovod.tensorflow", None)
    with pytest.raises(RuntimeError, match="Horovod is not installed.*--np 1"):
        run(_config(tiny_dataset.root, tmp_path / "out", num_processes=2))


def test_cli_trains_and_prints_a_summary(tiny_dataset: DatasetLayout, tmp_path: Path, capsys) -> None:
    out = tmp_path / "model"
    code = cli.main(["train", "--data", tiny_dataset.root, "--out", str(out), "--backbone", "small-cnn", "--inputs", "title",
                     "--epochs", "1", "--batch-size", "32", "--level-weights", "2", "--fit-on-val"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained small-cnn (title, preset cpu-small, float32)" in printed and "test top-1: L1" in printed
    # --fit-on-val holds nothing out, so the epoch line has no validation figure.
    assert re.search(r"^  epoch 1/1: loss \d+\.\d{3}, level 3 accuracy \d\.\d{3} \(\d+s\)$", printed, re.M), printed
    assert "Epoch 1/1" not in printed and "val level" not in printed
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"] == "title" and report["fit_splits"] == ["train", "val"]
    assert TrainingRecord.read(ModelLayout(str(out))).trained_on_val
    assert report["level_weights"] == [1.0, 1.0, 2.0]  # one value: the deepest level's
    assert report["steps_per_epoch"] == (SPLIT_SIZES["train"] + SPLIT_SIZES["val"]) // 32
    history = json.loads((out / "history.json").read_text())
    assert history["loss"] and not [key for key in history if key.startswith("val_")]
