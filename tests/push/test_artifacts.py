"""Push publishes only what was evaluated, proves the copy serves before moving pointers, and resumes.

Real parts: a loopback ``mlflow server`` (sqlite), real SavedModels, and a real ``ecom-kfp push``
subprocess killed with SIGKILL mid-copy.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecom_kfp import uri
from ecom_kfp.cli import main
from ecom_kfp.contracts import registry, serving
from ecom_kfp.contracts.digests import DigestError, write_model_digests
from ecom_kfp.contracts.layouts import EvaluationLayout, ModelLayout
from ecom_kfp.contracts.training import TrainingRecord
from ecom_kfp.evaluate.baseline import registry_client
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.stage import run as evaluate
from ecom_kfp.push.config import PushConfig
from ecom_kfp.push.payload import ServingPayload
from ecom_kfp.push.serving import PENDING, read_latest
from ecom_kfp.push.stage import NotEvaluatedError, run
from ecom_kfp.push.validation import InfraValidationError
from ecom_kfp.settings import ConfigError

#: Size of the padding asset that makes the copy of one file last long enough to be killed in.
PADDING_BYTES = 256 << 20


@pytest.fixture()
def name(request: pytest.FixtureRequest) -> str:
    return "a-" + request.node.name.replace("_", "-").replace("[", "-").replace("]", "")[:60]


@pytest.fixture(scope="module")
def good_evaluation(good_model, tiny_dataset, tmp_path_factory) -> str:
    """The blessed evaluation of the good model."""
    out = str(tmp_path_factory.mktemp("good-evaluation") / "evaluation")
    assert evaluate(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=out)).blessed
    return out


def _copy(model: ModelLayout, tmp_path: Path) -> ModelLayout:
    shutil.copytree(model.root, tmp_path / "model")
    return ModelLayout(str(tmp_path / "model"))


def _config(model: ModelLayout, evaluation: str, mlflow, tmp_path: Path, name: str, **overrides) -> PushConfig:
    settings = dict(model_uri=model.root, evaluation_uri=evaluation, registry_uri=mlflow.tracking_uri,
                    out_uri=str(tmp_path / "push"), serving_uri=str(tmp_path / "serving"), registered_model_name=name)
    return PushConfig(**(settings | overrides))


def _registered(mlflow, name: str) -> list:
    return registry_client(mlflow.tracking_uri).search_model_versions(f"name = '{name}'")


def _zero_variables(model: ModelLayout) -> None:
    data = next(Path(model.saved_model, "variables").glob("variables.data-*"))
    data.write_bytes(bytes(data.stat().st_size))


def _delete_variables_index(model: ModelLayout) -> None:
    Path(model.saved_model, "variables", "variables.index").unlink()


def _truncate_saved_model_pb(model: ModelLayout) -> None:
    pb = Path(model.saved_model, "saved_model.pb")
    pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])


def _claim_trained_on_val(model: ModelLayout) -> None:
    """What the blessing's calibration was decided on, changed after evaluate read it."""
    TrainingRecord.of(["train", "val"]).write(model)


@pytest.mark.parametrize("damage", [_zero_variables, _delete_variables_index, _truncate_saved_model_pb,
                                    _claim_trained_on_val])
@pytest.mark.parametrize("digests_rewritten", [False, True], ids=["digests-kept", "digests-rewritten"])
def test_a_model_other_than_the_one_evaluated_is_refused_before_anything_is_registered(
        mlflow, good_model, good_evaluation, tmp_path, name, damage, digests_rewritten, capsys) -> None:
    """Each damage with the blessed evaluation of the good model: the digests refuse it, and when whoever
    damaged it also rewrote digests.json, the digest evaluate recorded in blessing.json does."""
    model = _copy(good_model, tmp_path)
    damage(model)
    if digests_rewritten:
        write_model_digests(model)
    config = _config(model, good_evaluation, mlflow, tmp_path, name)
    expected = (NotEvaluatedError, "is not the one evaluated") if digests_rewritten else (DigestError, "refusing")
    with pytest.raises(expected[0], match=expected[1]):
        run(config)
    assert _registered(mlflow, name) == [] and not Path(config.serving_uri, name).exists()
    args = ["push", "--model", model.root, "--evaluation", good_evaluation, "--registry-uri", mlflow.tracking_uri,
            "--out", config.out_uri, "--serving-uri", config.serving_uri, "--registered-model-name", name, "--force"]
    assert main(args) == (3 if digests_rewritten else 2)  # --force does not push an unevaluated model either
    assert expected[1] in capsys.readouterr().err


def test_an_evaluation_without_a_model_digest_is_refused(mlflow, good_model, good_evaluation, tmp_path, name) -> None:
    evaluation = tmp_path / "evaluation"
    shutil.copytree(good_evaluation, evaluation)
    blessing = uri.read_json(str(evaluation / "blessing.json"))
    uri.write_json(str(evaluation / "blessing.json"), {k: v for k, v in blessing.items() if k != "model_sha256"})
    with pytest.raises(NotEvaluatedError, match="records no model content digest"):
        run(_config(good_model, str(evaluation), mlflow, tmp_path, name))


def _model_with_unnormalised_outputs(good_model: ModelLayout, tmp_path: Path) -> ModelLayout:
    """The good model behind a signature whose outputs are twice its probabilities: the same argmax, so
    evaluate scores and blesses it, but the published outputs break the serving contract."""
    import tensorflow as tf

    model = _copy(good_model, tmp_path)
    inner = tf.saved_model.load(good_model.saved_model)

    class Doubled(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving.INPUT_IMAGE),
                                      tf.TensorSpec([None], tf.string, name=serving.INPUT_TITLE)])
        def serve(self, image_bytes, title):
            outputs = self.inner.signatures[serving.SIGNATURE](image_bytes=image_bytes, title=title)
            return {key: 2.0 * value for key, value in outputs.items()}

    module = Doubled()
    shutil.rmtree(model.saved_model)
    tf.saved_model.save(module, model.saved_model, signatures={serving.SIGNATURE: module.serve.get_concrete_function()})
    write_model_digests(model)
    return model


def test_a_copy_that_does_not_serve_moves_no_pointer(mlflow, good_model, tiny_dataset, tmp_path, name) -> None:
    model = _model_with_unnormalised_outputs(good_model, tmp_path)
    evaluation = str(tmp_path / "evaluation")
    assert evaluate(EvaluateConfig(model_uri=model.root, data_uri=tiny_dataset.root, out_uri=evaluation)).blessed
    config = _config(model, evaluation, mlflow, tmp_path, name)
    with pytest.raises(InfraValidationError, match="level_1' is not a probability distribution"):
        run(config)
    client = registry_client(mlflow.tracking_uri)
    assert read_latest(config.serving_uri, name) is None
    assert client.get_registered_model(name).aliases == {}
    assert client.get_model_version(name, "1").tags[registry.SERVING_STATUS] == registry.SERVING_PENDING


def test_an_unwritable_serving_uri_fails_before_registration(mlflow, good_model, good_evaluation, tmp_path, name,
                                                             capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = _config(good_model, good_evaluation, mlflow, tmp_path, name, serving_uri=str(blocker / "serving"))
    with pytest.raises(ConfigError, match=r"--serving-uri=.*: cannot write .*nothing was registered"):
        run(config)
    assert _registered(mlflow, name) == []
    args = ["push", "--model", good_model.root, "--evaluation", good_evaluation, "--registry-uri",
            mlflow.tracking_uri, "--out", config.out_uri, "--serving-uri", config.serving_uri,
            "--registered-model-name", name]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--serving-uri" in err and "Traceback" not in err


def test_a_sqlite_registry_in_a_missing_directory_is_an_error(good_model, good_evaluation, tmp_path, name) -> None:
    database = tmp_path / "no-such-dir" / "mlflow.db"
    config = PushConfig(model_uri=good_model.root, evaluation_uri=good_evaluation, registry_uri=f"sqlite:///{database}",
                        out_uri=str(tmp_path / "push"), registered_model_name=name)
    with pytest.raises(ConfigError, match=r"--registry-uri=.*no-such-dir does not exist"):
        run(config)
    assert not database.parent.exists()


def _padded_model(good_model: ModelLayout, tmp_path: Path) -> ModelLayout:
    """The good model with a large (unused) asset, so that copying it takes long enough to be killed in."""
    model = _copy(good_model, tmp_path)
    padding = Path(model.saved_model, "assets", "padding.bin")
    padding.parent.mkdir(exist_ok=True)
    with open(padding, "wb") as fh:
        fh.truncate(PADDING_BYTES)
    write_model_digests(model)
    return model


def test_a_push_killed_mid_copy_is_completed_by_a_rerun(mlflow, good_model, tiny_dataset, tmp_path, name) -> None:
    model = _padded_model(good_model, tmp_path)
    evaluation = str(tmp_path / "evaluation")
    evaluate(EvaluateConfig(model_uri=model.root, data_uri=tiny_dataset.root, out_uri=evaluation))
    config = _config(model, evaluation, mlflow, tmp_path, name)
    target = Path(config.serving_uri, name, "1")
    command = [sys.executable, "-m", "ecom_kfp.cli", "push", "--model", model.root, "--evaluation", evaluation,
               "--registry-uri", mlflow.tracking_uri, "--out", config.out_uri, "--serving-uri", config.serving_uri,
               "--registered-model-name", name]
    log = tmp_path / "push.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        assets = target / "assets"
        if assets.is_dir() and any("padding.bin" in p.name for p in assets.iterdir()):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    assert process.wait(60) == -signal.SIGKILL, f"the push was not killed mid-copy:\n{log.read_text()[-2000:]}"
    final = target / "assets" / "padding.bin"
    assert not final.exists() or final.stat().st_size < PADDING_BYTES, "killed too late: the copy had finished"
    assert read_latest(config.serving_uri, name) is None

    report = run(config)
    payload = ServingPayload.from_model(model, EvaluationLayout(evaluation).thresholds)
    assert (report.version, report.created_version, report.signature_examples) == ("1", False, 4)
    assert sorted(uri.relative_files(str(target))) == [f.relative for f in payload.files]  # no leftovers
    assert final.stat().st_size == PADDING_BYTES
    assert read_latest(config.serving_uri, name)["version"] == "1"
    assert not Path(config.serving_uri, name, PENDING, "1.json").exists()
    client = registry_client(mlflow.tracking_uri)
    assert client.get_model_version_by_alias(name, registry.CHAMPION).version == "1"
    assert client.get_model_version(name, "1").tags[registry.SERVING_STATUS] == registry.SERVING_VERIFIED
