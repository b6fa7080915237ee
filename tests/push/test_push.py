"""Push against a real ``mlflow server`` (sqlite) and a real ``gcp-storage-emulator``."""

from __future__ import annotations

import pytest

from ecom_kfp import uri
from ecom_kfp.cli import main
from ecom_kfp.contracts import registry
from ecom_kfp.contracts.digests import verify_model
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.evaluate.baseline import registry_client
from ecom_kfp.evaluate.config import EvaluateConfig, GateConfig
from ecom_kfp.evaluate.stage import run as evaluate
from ecom_kfp.push.config import PushConfig
from ecom_kfp.push.payload import ServingPayload
from ecom_kfp.push.serving import ServingConflictError, read_latest, record_uri, verify_version
from ecom_kfp.push.stage import NotBlessedError, run
from ecom_kfp.testing import tiny_classifier as tiny


@pytest.fixture()
def name(request: pytest.FixtureRequest) -> str:
    """A registered model name of its own per test (the mlflow server is shared by the session)."""
    return "m-" + request.node.name.replace("_", "-")[:60]


def _evaluation(model, dataset, tmp_path, label: str, **gate) -> str:
    out = str(tmp_path / f"evaluation-{label}")
    evaluate(EvaluateConfig(model_uri=model.root, data_uri=dataset.root, out_uri=out, gate=GateConfig(**gate)))
    return out


def test_push_registers_publishes_and_is_idempotent(mlflow, good_model, tiny_dataset, tmp_path, name):
    evaluation = _evaluation(good_model, tiny_dataset, tmp_path, "good")
    serving = str(tmp_path / "serving")
    config = PushConfig(model_uri=good_model.root, evaluation_uri=evaluation, registry_uri=mlflow.tracking_uri,
                        out_uri=str(tmp_path / "push"), serving_uri=serving, registered_model_name=name)
    first = run(config)
    assert (first.version, first.created_version, first.aliases) == ("1", True, ["challenger", "champion"])
    thresholds = uri.join(evaluation, "thresholds.json")
    payload = ServingPayload.from_model(good_model, thresholds)
    target = uri.join(serving, name, "1")
    assert sorted(uri.relative_files(target)) == [f.relative for f in payload.files]
    served = uri.relative_files(target)
    assert "saved_model.pb" in served and "assets.extra/labels/level_2.txt" in served
    # the record of the splits it was fitted on is served too: what is published is what evaluate blessed
    assert uri.read_text(uri.join(target, "assets.extra", "training.json")) == uri.read_text(good_model.training)
    assert payload.model_sha256 == uri.read_json(uri.join(evaluation, "blessing.json"))["model_sha256"]
    # the thresholds evaluate chose are served beside the labels, byte for byte
    assert uri.read_text(uri.join(target, "assets.extra", "labels", "thresholds.json")) == uri.read_text(thresholds)
    assert read_latest(serving, name) == {"name": name, "version": "1", "uri": target,
                                          "content_sha256": payload.content_sha256}
    # the record of the verified copy, outside the version directory, that predict checks the copy against
    assert uri.read_json(record_uri(target)) == {"version": "1", "content_sha256": payload.content_sha256,
                                                 "files": {f.relative: f.sha256 for f in payload.files}}
    verify_version(target)
    client = registry_client(mlflow.tracking_uri)
    version = client.get_model_version_by_alias(name, "champion")
    metrics = uri.read_json(uri.join(evaluation, "metrics.json"))
    assert version.tags[registry.CONTENT_SHA256] == payload.content_sha256
    assert version.tags[registry.SERVING_STATUS] == registry.SERVING_VERIFIED
    assert version.tags[registry.TEST_FINGERPRINT] == metrics["test_fingerprint"]
    assert float(version.tags[registry.metric_tag(2, "accuracy")]) == metrics["levels"]["2"]["accuracy"]
    assert client.get_run(version.run_id).data.metrics["level_2.weighted_score"] == pytest.approx(
        metrics["levels"]["2"]["weighted_score"])
    from mlflow.artifacts import download_artifacts

    # the registered MLflow Model carries them as an artifact of its own, beside the model directory
    registered = download_artifacts(artifact_uri=f"{version.source}/{registry.THRESHOLDS_PATH}",
                                    dst_path=str(tmp_path / "registered"), tracking_uri=mlflow.tracking_uri)
    assert uri.read_text(registered) == uri.read_text(thresholds)
    # ...and the model directory with every payload file its digests cover, training.json too
    layout = download_artifacts(artifact_uri=f"{version.source}/{registry.MODEL_LAYOUT_DIR}",
                                dst_path=str(tmp_path / "registered-model"), tracking_uri=mlflow.tracking_uri)
    assert uri.read_text(ModelLayout(layout).training) == uri.read_text(good_model.training)
    assert verify_model(ModelLayout(layout)) == uri.read_json(good_model.digests)["content_sha256"]

    again = run(config)
    assert (again.version, again.created_version, again.files_copied) == ("1", False, 0)
    assert again.files_already_present == len(payload.files)
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert uri.read_json(uri.join(str(tmp_path / "push"), "report.json"))["version"] == "1"


def test_unblessed_model_is_refused_unless_forced(mlflow, good_model, weak_model, tiny_dataset, tmp_path, name, capsys):
    serving = str(tmp_path / "serving")
    good = PushConfig(model_uri=good_model.root, evaluation_uri=_evaluation(good_model, tiny_dataset, tmp_path, "good"),
                      registry_uri=mlflow.tracking_uri, out_uri=str(tmp_path / "p1"), serving_uri=serving,
                      registered_model_name=name)
    run(good)
    unblessed = _evaluation(weak_model, tiny_dataset, tmp_path, "weak", min_accuracy=0.95)
    args = ["push", "--model", weak_model.root, "--evaluation", unblessed, "--registry-uri", mlflow.tracking_uri,
            "--serving-uri", serving, "--out", str(tmp_path / "p2"), "--registered-model-name", name]
    assert main(args) == 3
    refusal = capsys.readouterr().err
    assert "is not blessed" in refusal and "Pass --force" in refusal
    with pytest.raises(NotBlessedError, match="FAILED level_2.accuracy >= 0.95"):
        run(PushConfig(model_uri=weak_model.root, evaluation_uri=unblessed, registry_uri=mlflow.tracking_uri,
                       out_uri=str(tmp_path / "p2"), serving_uri=serving, registered_model_name=name))
    assert main(args + ["--force"]) == 0
    assert "forced: not blessed" in capsys.readouterr().out
    client = registry_client(mlflow.tracking_uri)
    assert client.get_model_version_by_alias(name, "challenger").version == "2"
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert read_latest(serving, name)["version"] == "1"
    assert uri.exists(uri.join(serving, name, "2", "saved_model.pb"))


def test_interrupted_push_to_gcs_keeps_latest_and_a_rerun_completes(mlflow, gcs_bucket, good_model, tiny_dataset,
                                                                   tmp_path, name):
    """The copy of version 2 fails midway on a real bucket write conflict: an object with other content
    already sits at one of its paths (what a reset registry reusing version numbers would cause)."""
    serving = f"{gcs_bucket}/models"
    run(PushConfig(model_uri=good_model.root, evaluation_uri=_evaluation(good_model, tiny_dataset, tmp_path, "v1"),
                   registry_uri=mlflow.tracking_uri, out_uri=str(tmp_path / "p1"), serving_uri=serving,
                   registered_model_name=name))
    retrained = tiny.export_model(str(tmp_path / "retrained"), tiny.make_records(20, seed=3), tiny_dataset)
    evaluation = _evaluation(retrained, tiny_dataset, tmp_path, "v2")
    payload = ServingPayload.from_model(retrained, uri.join(evaluation, "thresholds.json"))
    blocked = payload.files[-1].relative  # copied last, so the failure comes after the rest
    uri.write_bytes(uri.join(serving, name, "2", *blocked.split("/")), b"someone else's bytes")
    config = PushConfig(model_uri=retrained.root, evaluation_uri=evaluation,
                        registry_uri=mlflow.tracking_uri, out_uri=str(tmp_path / "p2"), serving_uri=serving,
                        registered_model_name=name)
    with pytest.raises(ServingConflictError, match="never overwritten"):
        run(config)
    client = registry_client(mlflow.tracking_uri)
    assert read_latest(serving, name)["version"] == "1"
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version(name, "2").tags[registry.SERVING_STATUS] == registry.SERVING_PENDING
    partial = uri.relative_files(uri.join(serving, name, "2"))
    assert 1 < len(partial) <= len(payload.files)

    uri.delete(uri.join(serving, name, "2", *blocked.split("/")))
    report = run(config)
    assert (report.version, report.created_version) == ("2", False)
    assert report.files_already_present == len(payload.files) - 1 and report.files_copied == 1
    assert read_latest(serving, name)["version"] == "2"
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "2").tags[registry.SERVING_STATUS] == registry.SERVING_VERIFIED
    assert sorted(uri.relative_files(uri.join(serving, name, "2"))) == [f.relative for f in payload.files]


def test_bad_inputs_name_the_flag(mlflow, good_model, tmp_path, capsys):
    args = ["push", "--model", str(tmp_path / "missing"), "--evaluation", str(tmp_path), "--registry-uri",
            mlflow.tracking_uri, "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert "--model" in capsys.readouterr().err
    args[2] = good_model.root
    assert main(args) == 2
    assert "--evaluation" in capsys.readouterr().err


def test_every_flag_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["push", "--help"])
    text = capsys.readouterr().out
    for flag in ("--model", "--evaluation", "--registry-uri", "--serving-uri", "--out", "--registered-model-name",
                 "--alias", "--force"):
        assert flag in text
