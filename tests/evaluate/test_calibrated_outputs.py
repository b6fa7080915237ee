"""Evaluate's calibration, published thresholds, folded-class metric, tail slice and suspect labels, end to end.

Real SavedModels (the tiny classifier) scored through their serving signature on real GZIP shards.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ecom_kfp import uri
from ecom_kfp.contracts import serving
from ecom_kfp.contracts.digests import DigestError
from ecom_kfp.contracts.labels import Vocabulary
from ecom_kfp.contracts.layouts import EvaluationLayout
from ecom_kfp.contracts.serving import Thresholds
from ecom_kfp.contracts.training import TrainingRecord
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.stage import run
from ecom_kfp.testing import tiny_classifier as tiny

SANDAL = "Footwear > Sandal"
#: Training counts the manifests claim: every class common, except sandals with 3 examples.
TRAIN_COUNTS = ({"Apparel": 40, "Footwear": 40},
                {"Apparel > Topwear": 20, "Apparel > Bottomwear": 20, "Footwear > Shoes": 20, SANDAL: 3})


def _probabilities(model, records, level: int) -> np.ndarray:
    signature = serving.load_signature(model.saved_model)
    out = signature(image_bytes=tf.constant([r.image_jpeg for r in records]),
                    title=tf.constant([r.title for r in records]))
    return out[serving.output_key(level)].numpy()


def _folded_vocabularies() -> list[Vocabulary]:
    """Level 2 without sandals: the build folded them into ``other``."""
    level_1, level_2 = tiny.vocabularies()
    return [level_1, Vocabulary(2, tuple(c for c in level_2.classes if c != SANDAL))]


@pytest.fixture(scope="module")
def val_records() -> list[tiny.Record]:
    return tiny.make_records(25, seed=7)


@pytest.fixture(scope="module")
def calibrated_dataset(tmp_path_factory, test_records, val_records):
    """The shared test split plus a validation split and training counts (sandals kept with 3 examples)."""
    return tiny.write_dataset(str(tmp_path_factory.mktemp("cal") / "dataset"), test_records, val=val_records,
                              train_counts=TRAIN_COUNTS)


def test_thresholds_are_chosen_on_calibrated_probabilities_and_hold_when_served(
        good_model, calibrated_dataset, test_records, out_dir):
    report = run(EvaluateConfig(model_uri=good_model.root, data_uri=calibrated_dataset.root, out_uri=out_dir,
                                target_precision=0.9))
    layout = EvaluationLayout(out_dir)
    thresholds = Thresholds.from_json(Path(layout.thresholds).read_text())
    metrics = uri.read_json(layout.metrics)
    assert thresholds.target_precision == 0.9 and len(thresholds.levels) == 2
    assert metrics["thresholds"] == thresholds.to_dict()
    for level in (1, 2):
        calibration = metrics["calibration"]["levels"][str(level)]
        assert (calibration["fitted_split"], calibration["fitted_on"]) == ("val", len(tiny.make_records(25, seed=7)))
        assert thresholds.temperature[level - 1] == calibration["temperature"]
        assert report.calibration[str(level)]["ece_after"] == calibration["ece_after"]
        # What a server does with thresholds.json: calibrate the signature's output, accept >= threshold.
        served = thresholds.calibrate(level, _probabilities(good_model, test_records, level))
        truth = np.array([r.labels[level - 1] for r in test_records])
        chosen = thresholds.levels[level - 1]
        accepted = served.max(axis=1) >= chosen.threshold
        assert accepted.mean() == pytest.approx(chosen.coverage)
        assert (served.argmax(axis=1) == truth)[accepted].mean() == pytest.approx(chosen.precision)
        assert chosen.precision >= 0.9
        # the exact threshold accepts at least as much as any point of the 0.01 grid that reaches the target
        assert chosen.coverage >= max(c for c, p in zip(chosen.curve_coverage, chosen.curve_precision) if p >= 0.9)
    # colour alone separates level 1 (no validation mistake, nothing to fit); noisy titles make level 2 fit
    assert thresholds.temperature[0] == 1.0 and thresholds.temperature[1] != 1.0
    html = Path(layout.html).read_text()
    assert "Published thresholds (target precision 0.9)" in html


def test_calibration_lowers_ece_of_an_over_confident_model(tmp_path, calibrated_dataset, monkeypatch):
    """The tiny model with logits 4x larger is over-confident at level 2 (noisy titles); temperature undoes it.

    Judged by test log-likelihood: ECE over 60 test products moves by several points from noise alone
    (its drop is shown on 3,000 synthetic examples in test_calibration.py).
    """
    monkeypatch.setattr(tiny, "TEMPERATURE", tiny.TEMPERATURE * 4)
    sharp = tiny.export_model(str(tmp_path / "sharp"), tiny.make_records(20, seed=2), calibrated_dataset)
    report = run(EvaluateConfig(model_uri=sharp.root, data_uri=calibrated_dataset.root, out_uri=str(tmp_path / "out")))
    calibration = report.calibration["2"]
    assert calibration["temperature"] > 1.5
    judged = uri.read_json(EvaluationLayout(str(tmp_path / "out")).metrics)["calibration"]["levels"]["2"]
    assert judged["nll_after"] < judged["nll_before"] / 2


def test_a_model_trained_on_val_is_calibrated_on_test_and_judged_by_cross_fitting(tmp_path, calibrated_dataset,
                                                                                     test_records, monkeypatch):
    """A model trained on val (``--fit-on-val``) is right on nearly all of it, so a temperature fitted
    there says nothing about new products: evaluate fits it on the test split instead."""
    monkeypatch.setattr(tiny, "TEMPERATURE", tiny.TEMPERATURE * 4)
    sharp = tiny.export_model(str(tmp_path / "sharp"), tiny.make_records(20, seed=2), calibrated_dataset,
                              fit_splits=("train", "val"))  # training.json as train writes it with --fit-on-val
    out = str(tmp_path / "out")
    run(EvaluateConfig(model_uri=sharp.root, data_uri=calibrated_dataset.root, out_uri=out))
    metrics = uri.read_json(EvaluationLayout(out).metrics)
    assert "--fit-on-val" in metrics["calibration"]["note"]
    judged = metrics["calibration"]["levels"]["2"]
    assert (judged["fitted_split"], judged["fitted_on"]) == ("test", len(test_records))
    assert judged["temperature"] > 1.5
    assert judged["nll_after"] < judged["nll_before"] / 2  # cross-fitted: each half scaled by the other's temperature
    thresholds = Thresholds.from_json(Path(EvaluationLayout(out).thresholds).read_text())
    assert thresholds.temperature[1] == judged["temperature"]


def _calibration(tmp_path, dataset, model) -> dict:
    out = str(tmp_path / "out")
    run(EvaluateConfig(model_uri=model.root, data_uri=dataset.root, out_uri=out))
    return uri.read_json(EvaluationLayout(out).metrics)["calibration"]


def test_a_model_that_does_not_say_what_it_was_trained_on_is_calibrated_on_test(tmp_path, calibrated_dataset):
    """No ``training.json`` (an older ecom-kfp, another tool): it may have been trained on val."""
    model = tiny.export_model(str(tmp_path / "model"), tiny.make_records(20, seed=2), calibrated_dataset, fit_splits=())
    assert not Path(model.training).exists()
    calibration = _calibration(tmp_path, calibrated_dataset, model)
    assert calibration["levels"]["2"]["fitted_split"] == "test"
    assert "does not record the splits it was trained on" in calibration["note"]


@pytest.mark.parametrize("report", ['{"fit_splits": ["train"]}', '{"fit_splits": ["train", "val"]}', "{not json"])
def test_the_unverified_run_summary_does_not_move_calibration(tmp_path, calibrated_dataset, report):
    """``report.json`` is outside the model's digests: what it says is not what evaluate decides on."""
    model = tiny.export_model(str(tmp_path / "model"), tiny.make_records(20, seed=2), calibrated_dataset)
    Path(model.report).write_text(report)
    assert _calibration(tmp_path, calibrated_dataset, model)["levels"]["2"]["fitted_split"] == "val"


def test_a_training_record_changed_after_training_is_refused(tmp_path, calibrated_dataset):
    """Hiding ``--fit-on-val`` would get temperatures fitted on memorised data: the digests catch it."""
    model = tiny.export_model(str(tmp_path / "model"), tiny.make_records(20, seed=2), calibrated_dataset,
                              fit_splits=("train", "val"))
    TrainingRecord.of(["train"]).write(model)
    with pytest.raises(DigestError, match="training.json has SHA-256"):
        _calibration(tmp_path, calibrated_dataset, model)


def test_a_training_record_added_after_training_is_refused(tmp_path, calibrated_dataset):
    model = tiny.export_model(str(tmp_path / "model"), tiny.make_records(20, seed=2), calibrated_dataset, fit_splits=())
    TrainingRecord.of(["train"]).write(model)
    with pytest.raises(DigestError, match="training.json is not among the files its producer recorded"):
        _calibration(tmp_path, calibrated_dataset, model)


def _without_sandal_class(tmp_path, train_counts):
    """A model and dataset whose level 2 has no sandal class; returns the report, truth, predictions, tail."""
    vocabs = _folded_vocabularies()
    test = tiny.make_records(15, seed=1, vocabs=vocabs)
    dataset = tiny.write_dataset(str(tmp_path / "data"), test, vocabs=vocabs, train_counts=train_counts)
    model = tiny.export_model(str(tmp_path / "model"), tiny.make_records(20, seed=2, vocabs=vocabs), dataset,
                              vocabs=vocabs)
    report = run(EvaluateConfig(model_uri=model.root, data_uri=dataset.root, out_uri=str(tmp_path / "out")))
    tail = uri.read_json(EvaluationLayout(str(tmp_path / "out")).metrics)["tail"]["levels"]["2"]
    sandal = np.array([r.category_path == SANDAL for r in test])
    return report, np.array([r.labels[1] for r in test]), _probabilities(model, test, 2).argmax(axis=1), sandal, tail


def test_a_folded_class_counts_as_an_error_and_is_the_tail(tmp_path):
    report, truth, predicted, sandal, tail = _without_sandal_class(tmp_path, TRAIN_COUNTS)
    assert sandal.sum() == 15 and (truth[sandal] == 0).all()
    assert (predicted[sandal] == 0).mean() > 0.5  # the model answers "other" for most sandals...
    correct = (predicted == truth) & ~sandal  # ...and none of those count as right
    assert report.levels["2"]["accuracy"] == pytest.approx(correct.mean())
    assert report.levels["2"]["accuracy"] < (predicted == truth).mean()  # what the old metric said
    assert (tail["tail_examples"], tail["folded_examples"], tail["tail_accuracy"]) == (15, 15, 0.0)
    assert tail["tail_classes"] == 1
    assert tail["head_examples"] == 45 and tail["head_accuracy"] == pytest.approx(correct[~sandal].mean())
    assert report.tail["1"]["examples"] == 0  # Footwear is common at level 1


def test_a_kept_rare_class_is_the_tail_and_counts_when_named(good_model, calibrated_dataset, test_records, out_dir):
    """Under a keep-every-class policy the 3-example sandals have a class: naming it is right."""
    run(EvaluateConfig(model_uri=good_model.root, data_uri=calibrated_dataset.root, out_uri=out_dir))
    tail = uri.read_json(EvaluationLayout(out_dir).metrics)["tail"]["levels"]["2"]
    predicted = _probabilities(good_model, test_records, 2).argmax(axis=1)
    sandal = np.array([r.category_path == SANDAL for r in test_records])
    truth = np.array([r.labels[1] for r in test_records])
    assert (tail["tail_examples"], tail["folded_examples"]) == (15, 0)
    assert tail["tail_accuracy"] == pytest.approx((predicted == truth)[sandal].mean()) and tail["tail_accuracy"] > 0


def test_a_class_never_seen_in_training_is_right_as_other(tmp_path):
    counts = (TRAIN_COUNTS[0], {k: v for k, v in TRAIN_COUNTS[1].items() if k != SANDAL})
    report, truth, predicted, _, tail = _without_sandal_class(tmp_path, counts)
    assert report.levels["2"]["accuracy"] == pytest.approx((predicted == truth).mean())
    assert (tail["tail_examples"], tail["unseen_examples"]) == (0, 15)


def test_planted_label_errors_are_ranked_as_suspects(good_model, test_records, tmp_path):
    """Relabel confidently-right shoes as topwear; cleanlab must find them among the suspects."""
    shoes = _probabilities(good_model, test_records, 2)
    vocab = tiny.vocabularies()[1]
    shoe, topwear = vocab.lookup("Footwear > Shoes"), vocab.lookup("Apparel > Topwear")
    candidates = [i for i, r in enumerate(test_records) if r.labels[1] == shoe and shoes[i].argmax() == shoe]
    planted = candidates[:5]
    records = [tiny.with_label(r, 2, topwear) if i in planted else r for i, r in enumerate(test_records)]
    dataset = tiny.write_dataset(str(tmp_path / "data"), records, train_counts=TRAIN_COUNTS)
    out = str(tmp_path / "out")
    report = run(EvaluateConfig(model_uri=good_model.root, data_uri=dataset.root, out_uri=out))
    rows = [r for r in csv.DictReader(open(EvaluationLayout(out).suspect_labels)) if r["level"] == "2"]
    found = {r["product_id"] for r in rows}
    planted_ids = {test_records[i].product_id for i in planted}
    assert len(planted) == 5 and planted_ids <= found
    assert all(r["given"] == "Apparel > Topwear" and r["predicted"] == "Footwear > Shoes"
               for r in rows if r["product_id"] in planted_ids)
    summary = uri.read_json(EvaluationLayout(out).metrics)["suspect_labels"]["levels"]["2"]
    assert summary["count"] == len(rows) == report.suspect_labels["2"]["count"]
    assert summary["accuracy_without_suspects"] > summary["accuracy"]
    html = Path(EvaluationLayout(out).html).read_text()
    assert "accuracy with suspects set aside" in html and planted_ids.pop() in html


def test_folded_products_recorded_as_other_are_not_suspect_labels(tmp_path):
    """The sandals' label "other" is what folding made of a real class, not a catalog mistake."""
    _without_sandal_class(tmp_path, TRAIN_COUNTS)
    rows = list(csv.DictReader(open(EvaluationLayout(str(tmp_path / "out")).suspect_labels)))
    assert not [r for r in rows if r["product_id"].startswith("s1-c3-")]  # category 3 = sandals
