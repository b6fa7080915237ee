"""The ensemble stage on real tiny SavedModels: what it serves, what it refuses, and that evaluate takes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.digests import DigestError, write_model_digests
from ecom_kfp.contracts.layouts import EvaluationLayout, ModelLayout
from ecom_kfp.contracts.serving import load_signature, output_key
from ecom_kfp.contracts.training import TrainingRecord
from ecom_kfp.ensemble.config import EnsembleConfig
from ecom_kfp.ensemble.stage import MemberMismatchError, run
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.stage import run as evaluate
from ecom_kfp.push.validation import InfraValidationError
from ecom_kfp.settings import ConfigError
from ecom_kfp.testing import hostile
from ecom_kfp.testing import tiny_classifier as tiny


def _outputs(saved_model: str, records: list[tiny.Record]) -> list[np.ndarray]:
    import tensorflow as tf

    signature = load_signature(saved_model)
    answers = signature(image_bytes=tf.constant([r.image_jpeg for r in records]),
                        title=tf.constant([r.title for r in records]))
    return [answers[output_key(level)].numpy() for level in (1, 2)]


def _copy(layout: ModelLayout, tmp_path: Path, name: str) -> ModelLayout:
    shutil.copytree(layout.root, tmp_path / name)
    return ModelLayout(str(tmp_path / name))


@pytest.mark.parametrize("weights", [[], [3.0, 1.0]], ids=["equal", "weighted"])
def test_it_serves_the_weighted_mean_of_its_members(good_model, weak_model, test_records, tmp_path,
                                                    weights) -> None:
    out = str(tmp_path / "ensemble")
    report = run(EnsembleConfig(model_uris=[good_model.root, weak_model.root], out_uri=out, weights=weights))
    share = [0.75, 0.25] if weights else [0.5, 0.5]
    assert report.weights == share
    good, weak = _outputs(good_model.saved_model, test_records), _outputs(weak_model.saved_model, test_records)
    served = _outputs(ModelLayout(out).saved_model, test_records)
    for level in range(2):
        np.testing.assert_allclose(served[level], share[0] * good[level] + share[1] * weak[level], atol=1e-6)
    # The members really differ, or the mean would not show that both are used.
    assert np.abs(good[1] - weak[1]).max() > 0.1
    assert report.classes == [len(v) for v in tiny.vocabularies()]
    assert report.member_sha256 == [uri.read_json(m.digests)["content_sha256"] for m in (good_model, weak_model)]
    assert report.content_sha256 == uri.read_json(ModelLayout(out).digests)["content_sha256"]
    assert not Path(ModelLayout(out).keras_model).exists()


def test_evaluate_scores_the_ensemble_and_blesses_its_content(good_model, weak_model, tiny_dataset, tmp_path) -> None:
    out, evaluation = str(tmp_path / "ensemble"), str(tmp_path / "evaluation")
    report = run(EnsembleConfig(model_uris=[good_model.root, weak_model.root], out_uri=out))
    scored = evaluate(EvaluateConfig(model_uri=out, data_uri=tiny_dataset.root, out_uri=evaluation))
    weak = evaluate(EvaluateConfig(model_uri=weak_model.root, data_uri=tiny_dataset.root,
                                   out_uri=str(tmp_path / "weak-evaluation")))
    assert uri.read_json(EvaluationLayout(evaluation).blessing)["model_sha256"] == report.content_sha256
    assert scored.levels["2"]["accuracy"] > weak.levels["2"]["accuracy"]


def test_one_member_is_published_unchanged(good_model, test_records, tmp_path) -> None:
    """What training_pipeline does with one seed: the member's SavedModel, same content digest, so
    evaluate blesses and push registers exactly what train produced."""
    out = str(tmp_path / "ensemble")
    report = run(EnsembleConfig(model_uris=[good_model.root], out_uri=out))
    assert report.weights == [1.0]
    assert report.content_sha256 == report.member_sha256[0] == uri.read_json(good_model.digests)["content_sha256"]
    for level in range(2):
        np.testing.assert_array_equal(_outputs(ModelLayout(out).saved_model, test_records)[level],
                                      _outputs(good_model.saved_model, test_records)[level])
    assert report.fit_splits == ["train"]
    assert Path(ModelLayout(out).training).read_bytes() == Path(good_model.training).read_bytes()


def _trained_on(layout: ModelLayout, splits: tuple[str, ...]) -> ModelLayout:
    """``layout`` re-recorded as trained on ``splits`` (none: without training.json), as its producer would write it."""
    Path(layout.training).unlink()
    if splits:
        TrainingRecord.of(splits).write(layout)
    write_model_digests(layout)
    return layout


def test_fit_splits_are_every_split_a_member_was_trained_on(good_model, weak_model, tmp_path) -> None:
    members = [_trained_on(_copy(good_model, tmp_path, "a"), ("train",)),
               _trained_on(_copy(weak_model, tmp_path, "b"), ("train", "val"))]
    out = ModelLayout(str(tmp_path / "ensemble"))
    report = run(EnsembleConfig(model_uris=[m.root for m in members], out_uri=out.root))
    assert report.fit_splits == ["train", "val"]
    assert TrainingRecord.read(out) == TrainingRecord(("train", "val"))
    assert "training.json" in uri.read_json(out.digests)["files"]


def test_a_member_that_does_not_say_what_it_was_trained_on_leaves_the_ensemble_unsaid(good_model, weak_model,
                                                                                    tmp_path) -> None:
    """Evaluate then calibrates the ensemble as a model possibly trained on val."""
    members = [_copy(good_model, tmp_path, "a"), _trained_on(_copy(weak_model, tmp_path, "b"), ())]
    out = ModelLayout(str(tmp_path / "ensemble"))
    report = run(EnsembleConfig(model_uris=[m.root for m in members], out_uri=out.root))
    assert report.fit_splits is None and TrainingRecord.read(out) is None


def test_a_member_replaced_after_training_is_refused_before_its_graph_runs(good_model, weak_model, tmp_path) -> None:
    member = _copy(weak_model, tmp_path, "member")
    marker = tmp_path / "graph-ran"
    shutil.rmtree(member.saved_model)
    hostile.classifier_writing_a_file(member.saved_model, str(marker), [len(v) for v in tiny.vocabularies()])
    out = tmp_path / "ensemble"
    with pytest.raises(DigestError, match=r"--models .*member: saved_model/"):
        run(EnsembleConfig(model_uris=[good_model.root, member.root], out_uri=str(out)))
    assert not marker.exists()
    assert not (out / "saved_model").exists()


def test_members_trained_on_another_dataset_are_refused(good_model, tmp_path) -> None:
    other_data = tiny.write_dataset(str(tmp_path / "other-data"), tiny.make_records(5, seed=7))
    other = tiny.export_model(str(tmp_path / "other"), tiny.make_records(20, seed=2), other_data)
    with pytest.raises(MemberMismatchError, match="trained on another dataset"):
        run(EnsembleConfig(model_uris=[good_model.root, other.root], out_uri=str(tmp_path / "ensemble")))


@pytest.mark.parametrize(("models", "weights", "message"), [
    ([], [], "must name 1 to 16 models"),
    ([f"m{i}" for i in range(17)], [], "must name 1 to 16 models"),
    (["a", "a"], [], "names a model twice"),
    (["a", "b"], [1.0], "one weight per model"),
    (["a", "b"], [1.0, 0.0], "must be positive"),
    (["a", "b"], [1.0, float("nan")], "must be positive"),
])
def test_bad_flags_fail_before_anything_is_read(models, weights, message, tmp_path) -> None:
    with pytest.raises(ConfigError, match=message):
        run(EnsembleConfig(model_uris=models, out_uri=str(tmp_path / "out"), weights=weights))


def test_an_out_directory_holding_a_model_is_refused(good_model, weak_model, tmp_path) -> None:
    out = _copy(good_model, tmp_path, "taken")
    with pytest.raises(ConfigError, match="already holds a model"):
        run(EnsembleConfig(model_uris=[good_model.root, weak_model.root], out_uri=out.root))


def test_a_model_that_does_not_serve_never_reaches_out(good_model, tmp_path) -> None:
    """Members whose digests are in order but whose outputs are narrower than their label files: the
    average is written and loads, fails the serving check, and --out stays empty."""
    members = []
    for name in ("narrow-a", "narrow-b"):
        member = _copy(good_model, tmp_path, name)
        shutil.rmtree(member.saved_model)
        hostile.classifier_writing_a_file(member.saved_model, str(tmp_path / f"{name}-ran"), [2, 2])
        write_model_digests(member)  # as a producer of such a model would have
        members.append(member.root)
    out = tmp_path / "ensemble"
    with pytest.raises(InfraValidationError, match="output 'level_1' has shape"):
        run(EnsembleConfig(model_uris=members, out_uri=str(out)))
    assert not out.exists() or not any(out.iterdir())
