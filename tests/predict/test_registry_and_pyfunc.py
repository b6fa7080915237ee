"""Every model reference predict takes, and the registered MLflow Model, against a real loopback
``mlflow server`` (sqlite) and a real ``mlflow models serve --env-manager local``."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pyarrow.parquet as pq
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts import registry
from ecom_kfp.contracts.digests import DigestError, write_model_digests
from ecom_kfp.contracts.layouts import ModelLayout, PredictionLayout
from ecom_kfp.evaluate.baseline import registry_client
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.stage import run as evaluate
from ecom_kfp.predict import PredictConfig, run
from ecom_kfp.predict.model import KIND_REGISTRY, KIND_SERVING, KIND_TRAIN
from ecom_kfp.push.config import PushConfig
from ecom_kfp.push.serving import record_uri
from ecom_kfp.push.stage import run as push
from ecom_kfp.testing.servers import LOOPBACK, free_port, stop_process, wait_http
from tests.predict.helpers import THRESHOLDS


@pytest.fixture(scope="module")
def pushed(mlflow, predict_model, tiny_dataset, tmp_path_factory):
    """The predict model pushed twice under one name: version 1 with a serving copy, version 2 without."""
    tmp = tmp_path_factory.mktemp("pushed")
    name = "predict-pyfunc"
    versions = {}
    for label, serving in (("served", str(tmp / "serving")), ("registry-only", "")):
        model = ModelLayout(str(tmp / label / "model"))
        shutil.copytree(predict_model.root, model.root)
        if label == "registry-only":  # other content, so push makes a second version
            uri.write_text(uri.join(model.root, "dataset_manifest.json"), "{}")
            write_model_digests(model)  # as its producer would have
        evaluation = str(tmp / label / "evaluation")
        evaluate(EvaluateConfig(model_uri=model.root, data_uri=tiny_dataset.root, out_uri=evaluation))
        THRESHOLDS.save(evaluation)  # push serves the evaluation's thresholds: the fixture's, not evaluate's
        report = push(PushConfig(model_uri=model.root, evaluation_uri=evaluation, registry_uri=mlflow.tracking_uri,
                                 out_uri=str(tmp / label / "push"), serving_uri=serving, registered_model_name=name,
                                 alias="champion" if serving else "candidate"))
        versions[label] = report
    return name, versions


def _predict(catalog, model, out, registry_uri=""):
    report = run(PredictConfig(products_uri=catalog.root, model_uri=model, out_uri=str(out),
                               registry_uri=registry_uri, progress=False))
    return report, pq.read_table(PredictionLayout(str(out)).predictions).to_pylist()


def test_every_model_reference_gives_the_same_predictions(mlflow, pushed, predict_model, catalog, tmp_path):
    name, versions = pushed
    reference, expected = _predict(catalog, predict_model.root, tmp_path / "train")
    assert reference.model_kind == KIND_TRAIN
    served = versions["served"].serving_uri
    cases = [(served, KIND_SERVING, ""), (f"models:/{name}@champion", KIND_REGISTRY, served),
             (f"models:/{name}/{versions['registry-only'].version}", KIND_REGISTRY, " from ")]
    for i, (model, kind, where) in enumerate(cases):
        report, rows = _predict(catalog, model, tmp_path / f"case-{i}", mlflow.tracking_uri)
        assert (report.model_kind, report.thresholds) == (kind, reference.thresholds)
        assert where in report.model
        assert rows == expected
    with pytest.raises(FileNotFoundError, match="not found in the registry"):
        _predict(catalog, f"models:/{name}@nobody", tmp_path / "missing", mlflow.tracking_uri)


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("tamper", "message"), [
    (lambda version: _flip_a_byte(version / "saved_model.pb"), "saved_model.pb has SHA-256"),
    (lambda version: (version / "assets.extra" / "labels" / "level_1.txt").write_text("Bags\n"),
     "assets.extra/labels/level_1.txt has SHA-256"),
    (lambda version: (version / "assets.extra" / "notes.txt").write_text("x"),
     "assets.extra/notes.txt is not among the files its producer recorded"),
    (lambda version: (version / "variables" / "variables.index").unlink(), "variables/variables.index is recorded but"),
    (lambda version: os.remove(record_uri(str(version))), "no record of its files"),
])
def test_a_serving_version_changed_after_its_push_is_refused(pushed, catalog, tmp_path, tamper, message):
    """A pushed version is checked against push's record beside it, named directly or through the registry."""
    _, versions = pushed
    served = versions["served"].serving_uri
    name_dir = tmp_path / "serving" / "name"
    shutil.copytree(os.path.dirname(served), name_dir)
    version = name_dir / os.path.basename(served)
    _predict(catalog, str(version), tmp_path / "untouched")  # the copy as pushed scores
    tamper(version)
    with pytest.raises(DigestError, match=message):
        _predict(catalog, str(version), tmp_path / "tampered")
    assert not (tmp_path / "tampered").exists()


def _products(catalog, ids):
    table = pq.read_table(catalog.layout.products).to_pylist()
    return [row for row in table if row["product_id"] in ids]


def test_the_registered_model_is_an_mlflow_pyfunc_with_the_same_outputs(mlflow, pushed, predict_model, catalog,
                                                                       tmp_path):
    import mlflow as mlflow_lib
    import pandas as pd

    name, _ = pushed
    _, expected = _predict(catalog, predict_model.root, tmp_path / "batch")
    by_id = {r["product_id"]: r for r in expected}
    products = _products(catalog, list(by_id)[:4])
    mlflow_lib.set_tracking_uri(mlflow.tracking_uri)
    try:
        model = mlflow_lib.pyfunc.load_model(f"models:/{name}@champion")
    finally:
        mlflow_lib.set_tracking_uri("")
    assert {c.name for c in model.metadata.get_input_schema().inputs} == {"image", "image_uri", "title"}
    frame = pd.DataFrame({"image": [uri.read_bytes(p["image_uri"]) for p in products] + [b"not an image", None],
                          "image_uri": [""] * len(products) + ["", products[0]["image_uri"]],
                          "title": [p["title"] for p in products] + ["x", "y"]})
    out = model.predict(frame)
    for row, product in zip(out.to_dict("records"), products):
        want = by_id[product["product_id"]]
        assert row["predicted_path"] == " > ".join(want["predicted_path"])
        assert row["confidence"] == pytest.approx(want["confidence"], abs=1e-6)
        assert (row["accepted"], row["error"]) == (want["accepted"], "")
        assert row["level_2_classes"] == want["top_classes"][1]
    assert out["error"].iloc[-2] == "image cannot be decoded"
    assert "only gs:// URIs" in out["error"].iloc[-1]  # a server never reads its own files for a client
    strict = model.predict(frame.iloc[:4], params={"target_precision": 0.99})
    assert set(strict["threshold"]) == {0.95}


def test_mlflow_models_serve_scores_two_products_over_http(mlflow, pushed, predict_model, catalog, tmp_path):
    name, _ = pushed
    _, expected = _predict(catalog, predict_model.root, tmp_path / "batch")
    by_id = {r["product_id"]: r for r in expected}
    products = _products(catalog, list(by_id)[:2])
    port = free_port()
    bin_dir = os.path.dirname(sys.executable)  # mlflow runs uvicorn from PATH: this environment's, unactivated
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.tracking_uri, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    cmd = [os.path.join(bin_dir, "mlflow"), "models", "serve", "-m",
           f"models:/{name}@champion", "--env-manager", "local", "--host", LOOPBACK, "--port", str(port)]
    with open(tmp_path / "serve.log", "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            try:
                wait_http(f"http://{LOOPBACK}:{port}/ping", 240, process)
            except Exception as exc:
                raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from exc
            body = {"dataframe_split": {
                "columns": ["image", "title"],
                "data": [[base64.b64encode(uri.read_bytes(p["image_uri"])).decode(), p["title"]] for p in products]}}
            request = urllib.request.Request(f"http://{LOOPBACK}:{port}/invocations", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = json.loads(response.read())["predictions"]
        finally:
            stop_process(process)
    assert len(answer) == 2
    for row, product in zip(answer, products):
        want = by_id[product["product_id"]]
        assert row["predicted_path"] == " > ".join(want["predicted_path"])
        assert row["confidence"] == pytest.approx(want["confidence"], abs=1e-6)


def test_pushed_versions_hold_the_model_layout_for_evaluate(mlflow, pushed, tmp_path):
    """A registered version downloads as an MLflow Model whose artifacts/model is a model directory."""
    from mlflow.artifacts import download_artifacts

    name, versions = pushed
    version = registry_client(mlflow.tracking_uri).get_model_version(name, versions["served"].version)
    local = download_artifacts(artifact_uri=version.source, dst_path=str(tmp_path),
                                                tracking_uri=mlflow.tracking_uri)
    assert os.path.exists(os.path.join(local, "MLmodel"))
    layout = ModelLayout(registry.layout_root(local))
    assert os.path.exists(uri.join(layout.saved_model, "saved_model.pb")) and os.path.exists(layout.thresholds)
