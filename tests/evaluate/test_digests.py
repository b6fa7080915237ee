"""Evaluate verifies the model and the test split against their producers' digests before loading anything,
and records the content digest of the model it scored in blessing.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.digests import DigestError, tree_digests
from ecom_kfp.contracts.layouts import DatasetLayout, EvaluationLayout, ModelLayout
from ecom_kfp.contracts.serving import load_signature
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.inference import score_split
from ecom_kfp.evaluate.inputs import open_inputs
from ecom_kfp.evaluate.stage import run
from ecom_kfp.push.payload import ServingPayload
from ecom_kfp.testing import hostile
from ecom_kfp.testing import tiny_classifier as tiny


def _copy(layout, tmp_path: Path, name: str) -> str:
    target = tmp_path / name
    shutil.copytree(layout.root, target)
    return str(target)


def _hostile_model(good_model: ModelLayout, tmp_path: Path) -> tuple[ModelLayout, Path]:
    """The good model's directory with its SavedModel replaced by one whose graph writes a file."""
    model = ModelLayout(_copy(good_model, tmp_path, "model"))
    marker = tmp_path / "graph-ran"
    shutil.rmtree(model.saved_model)
    hostile.classifier_writing_a_file(model.saved_model, str(marker), [len(v) for v in tiny.vocabularies()])
    return model, marker


def test_blessing_records_the_content_digest_of_the_model_scored(good_model, tiny_dataset, out_dir) -> None:
    run(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=out_dir))
    blessing = uri.read_json(EvaluationLayout(out_dir).blessing)
    assert blessing["model_sha256"] == uri.read_json(good_model.digests)["content_sha256"]
    assert blessing["model_sha256"] == ServingPayload.from_model(good_model).model_sha256


def test_a_saved_model_replaced_after_training_is_refused_before_its_graph_runs(good_model, tiny_dataset, tmp_path,
                                                                                out_dir) -> None:
    model, marker = _hostile_model(good_model, tmp_path)
    with pytest.raises(DigestError, match=r"--model .*: saved_model/.* refusing to load it"):
        run(EvaluateConfig(model_uri=model.root, data_uri=tiny_dataset.root, out_uri=out_dir))
    assert not marker.exists()
    import tensorflow as tf

    load_signature(model.saved_model)(image_bytes=tf.constant([b"jpeg"]), title=tf.constant(["a title"]))
    assert marker.exists(), "the hostile SavedModel must really run code when called, or this test proves nothing"


def test_a_saved_model_swapped_after_the_check_is_not_what_runs(good_model, tiny_dataset, tmp_path) -> None:
    """The check and the load are one copy: a writer who swaps the shared SavedModel for a hostile one
    once evaluate has checked it (a shared bucket or volume) changes nothing evaluate runs."""
    model = ModelLayout(_copy(good_model, tmp_path, "model"))
    hostile_model, marker = _hostile_model(good_model, tmp_path / "hostile")
    with open_inputs(model.root, tiny_dataset.root) as inputs:
        shutil.rmtree(model.saved_model)
        shutil.copytree(hostile_model.saved_model, model.saved_model)
        scores = score_split(inputs, "test", 8)
    assert scores.examples > 0
    assert not marker.exists(), "evaluate ran the SavedModel swapped in after its check"


def test_changed_variables_or_a_model_without_digests_are_refused(good_model, tiny_dataset, tmp_path, out_dir) -> None:
    model = ModelLayout(_copy(good_model, tmp_path, "model"))
    data = next(Path(model.saved_model, "variables").glob("variables.data-*"))
    data.write_bytes(bytes(len(data.read_bytes())))
    with pytest.raises(DigestError, match="variables/variables.data-.* has SHA-256"):
        run(EvaluateConfig(model_uri=model.root, data_uri=tiny_dataset.root, out_uri=out_dir))
    Path(model.digests).unlink()
    with pytest.raises(DigestError, match="no digests.json"):
        run(EvaluateConfig(model_uri=model.root, data_uri=tiny_dataset.root, out_uri=out_dir))


def test_a_test_shard_added_or_changed_after_the_build_is_refused(good_model, tiny_dataset, tmp_path, out_dir) -> None:
    data = DatasetLayout(_copy(tiny_dataset, tmp_path, "data"))
    extra = Path(data.split_dir("test")) / "part-00009-of-00009.tfrecord.gz"
    shutil.copyfile(data.shard("test", 0, 2), extra)
    with pytest.raises(DigestError, match="test/part-00009-of-00009.tfrecord.gz is not among the files"):
        run(EvaluateConfig(model_uri=good_model.root, data_uri=data.root, out_uri=out_dir))
    extra.unlink()
    manifest = json.loads(Path(data.manifest).read_text())
    manifest["digests"] = {k: v for k, v in tree_digests(data.root).items() if not k.startswith("labels/")}
    Path(data.manifest).write_text(json.dumps(manifest))
    with pytest.raises(DigestError, match="labels/level_1.txt is not among the files"):
        run(EvaluateConfig(model_uri=good_model.root, data_uri=data.root, out_uri=out_dir))


def test_thresholds_beside_the_labels_are_outside_the_model_digest(good_model, tiny_dataset, tmp_path,
                                                                   out_dir) -> None:
    """A registered model carries evaluate's thresholds.json beside its labels; its re-evaluation still verifies."""
    model = ModelLayout(_copy(good_model, tmp_path, "model"))
    Path(model.thresholds).write_text("{}")
    run(EvaluateConfig(model_uri=model.root, data_uri=tiny_dataset.root, out_uri=out_dir))
    assert uri.read_json(EvaluationLayout(out_dir).blessing)["model_sha256"] == \
        uri.read_json(good_model.digests)["content_sha256"]
