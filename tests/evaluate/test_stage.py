"""The evaluate stage on a real SavedModel and real GZIP TFRecord shards."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ecom_kfp import uri
from ecom_kfp.cli import main
from ecom_kfp.contracts import serving
from ecom_kfp.contracts.layouts import EvaluationLayout
from ecom_kfp.evaluate.business_value import SOURCE_RECORDS, SOURCE_TABLE
from ecom_kfp.evaluate.config import EvaluateConfig, GateConfig
from ecom_kfp.evaluate.stage import run
from ecom_kfp.testing import tiny_classifier as tiny


def _served_predictions(model, records) -> list[np.ndarray]:
    """Arg-max per level from calling the SavedModel directly on the raw records (not via TFRecords)."""
    signature = serving.load_signature(model.saved_model)
    out = signature(image_bytes=tf.constant([r.image_jpeg for r in records]), title=tf.constant([r.title for r in records]))
    return [out[serving.output_key(k)].numpy().argmax(axis=1) for k in (1, 2)]


def test_metrics_are_what_the_served_model_does(good_model, tiny_dataset, test_records, out_dir):
    report = run(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=out_dir))
    predicted = _served_predictions(good_model, test_records)
    values = np.array([r.business_value for r in test_records])
    assert report.examples == len(test_records)
    assert report.business_value_source == SOURCE_RECORDS
    for k in (1, 2):
        truth = np.array([r.labels[k - 1] for r in test_records])
        correct = predicted[k - 1] == truth
        assert report.levels[str(k)]["accuracy"] == pytest.approx(correct.mean())
        assert report.levels[str(k)]["weighted_score"] == pytest.approx((values * correct).sum() / values.sum())
    assert report.levels["2"]["accuracy"] < 1.0  # noisy titles: the fixture is not trivially solved
    assert report.blessed  # no baseline, default floors of 0
    layout = EvaluationLayout(out_dir)
    blessing = uri.read_json(layout.blessing)
    assert blessing["blessed"] and blessing["baseline"] is None
    assert any("only absolute thresholds apply" in r for r in blessing["reasons"])
    rows = list(csv.reader(open(layout.confusion(2))))
    # most valuable first: shoes carry business value 10 per product, the most of any class
    assert rows[0][1] == "Footwear > Shoes" and rows[0][-1] == "(all other classes)"
    assert sum(int(v) for row in rows[1:] for v in row[1:]) == len(test_records)
    coverage = list(csv.DictReader(open(layout.coverage)))
    assert {r["level"] for r in coverage} == {"1", "2"} and len(coverage) == 2 * 101
    assert float(coverage[0]["coverage"]) == 1.0
    metrics = uri.read_json(layout.metrics)
    assert metrics["levels"]["2"]["confidence_threshold"] == 0.5
    assert {s["value"] for s in metrics["slices"] if s["column"] == "top_level"} == {"Apparel", "Footwear"}
    html = Path(layout.html).read_text()
    # metrics, reliability, precision/coverage and confusion plots; example images of confusions
    assert html.count("data:image/png;base64,") == 4 and "data:image/jpeg;base64," in html
    # no validation split in this dataset: nothing to fit a temperature on, and it says so
    assert metrics["calibration"]["levels"]["2"]["temperature"] == 1.0
    assert "no validation records" in metrics["calibration"]["note"]
    assert json.loads(Path(out_dir, "report.json").read_text())["examples"] == len(test_records)


def test_business_value_table_and_slice_columns(good_model, tiny_dataset, test_records, out_dir, tmp_path):
    table = tmp_path / "values.csv"
    table.write_text("category_path,business_value\nFootwear > Shoes,100\nFootwear > Sandal,1\nApparel,1\n")
    products = tmp_path / "products.csv"
    products.write_text("product_id,gender\n" + "".join(f"{r.product_id},{'Men' if i % 2 else 'Women'}\n"
                                                       for i, r in enumerate(test_records)))
    report = run(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=out_dir,
                                business_value_uri=str(table), slice_table_uri=str(products),
                                slice_columns=["gender"], slice_min_examples=1, slice_floor=0.99))
    assert report.business_value_source == SOURCE_TABLE
    predicted = _served_predictions(good_model, test_records)
    truth = np.array([r.labels[1] for r in test_records])
    weights = np.array([100.0 if r.labels[1] == 3 else 1.0 for r in test_records])  # id 3 = Footwear > Shoes
    assert tiny.vocabularies()[1].classes[3] == "Footwear > Shoes"
    correct = predicted[1] == truth
    assert report.levels["2"]["weighted_score"] == pytest.approx((weights * correct).sum() / weights.sum())
    slices = uri.read_json(EvaluationLayout(out_dir).metrics)["slices"]
    gender = {s["value"]: s for s in slices if s["column"] == "gender"}
    assert set(gender) == {"Men", "Women"} and sum(s["examples"] for s in gender.values()) == len(test_records)
    flagged = [s for s in slices if s["flagged"]]
    assert report.flagged_slices == len(flagged) > 0  # a 0.99 floor catches the imperfect level-2 slices


def test_worse_model_is_not_blessed_against_a_baseline_dir(good_model, weak_model, tiny_dataset, out_dir):
    report = run(EvaluateConfig(model_uri=weak_model.root, data_uri=tiny_dataset.root, out_uri=out_dir,
                                baseline=good_model.root))
    assert not report.blessed
    blessing = uri.read_json(EvaluationLayout(out_dir).blessing)
    assert blessing["baseline"]["method"] == "re-evaluated"
    failed = [c for c in blessing["checks"] if not c["passed"]]
    assert failed and all(c["kind"] == "change" and c["level"] == 2 for c in failed)


def test_absolute_threshold_blocks_blessing(good_model, tiny_dataset, out_dir):
    report = run(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=out_dir,
                                gate=GateConfig(min_accuracy=0.999)))
    assert not report.blessed
    reasons = uri.read_json(EvaluationLayout(out_dir).blessing)["reasons"]
    assert any(r.startswith("FAILED level_2.accuracy >= 0.999") for r in reasons)


def test_missing_model_dir_names_the_flag(tiny_dataset, out_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="--model .*not a model directory"):
        run(EvaluateConfig(model_uri=str(tmp_path / "no-model"), data_uri=tiny_dataset.root, out_uri=out_dir))


def test_label_beyond_vocabulary_is_a_clear_error(good_model, test_records, out_dir, tmp_path):
    records = list(test_records)
    records[5] = tiny.with_label(records[5], 2, 42)
    dataset = tiny.write_dataset(str(tmp_path / "bad"), records)
    with pytest.raises(ValueError, match=rf"{records[5].product_id}.*label_level_2=42.*only 5 classes"):
        run(EvaluateConfig(model_uri=good_model.root, data_uri=dataset.root, out_uri=out_dir))


def test_empty_test_split_is_a_clear_error(good_model, out_dir, tmp_path):
    dataset = tiny.write_dataset(str(tmp_path / "empty"), [])
    with pytest.raises(ValueError, match="the test split has no records"):
        run(EvaluateConfig(model_uri=good_model.root, data_uri=dataset.root, out_uri=out_dir))


def test_dataset_with_other_vocabulary_is_rejected(good_model, test_records, out_dir, tmp_path):
    vocabs = tiny.vocabularies()
    other = [vocabs[0], type(vocabs[1])(2, (*vocabs[1].classes, "Footwear > Boots"))]
    dataset = tiny.write_dataset(str(tmp_path / "other"), test_records, vocabs=other)
    with pytest.raises(ValueError, match="level 2 labels .* differ"):
        run(EvaluateConfig(model_uri=good_model.root, data_uri=dataset.root, out_uri=out_dir))


def test_cli_summary_and_exit_codes(good_model, tiny_dataset, out_dir, capsys, tmp_path):
    assert main(["evaluate", "--model", good_model.root, "--data", tiny_dataset.root, "--out", out_dir,
                 "--top-k", "2"]) == 0
    printed = capsys.readouterr().out
    assert "level 2: accuracy" in printed and "BLESSED" in printed
    assert main(["evaluate", "--model", str(tmp_path / "none"), "--data", tiny_dataset.root, "--out", out_dir]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["evaluate", "--model", good_model.root, "--data", tiny_dataset.root, "--out", out_dir,
                 "--confidence-threshold", "1.5"]) == 2
    assert "--confidence-threshold=1.5: must be within [0, 1]" in capsys.readouterr().err


def test_max_test_examples_scores_a_fixed_sample_and_says_so(good_model, tiny_dataset, test_records, tmp_path,
                                                             capsys):
    """Whole batches of the first records, the same ones on every run: a champion re-evaluated with the
    same flags is compared on the same products (the fingerprint names them)."""
    full = run(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=str(tmp_path / "full")))
    assert (full.examples, full.test_records) == (len(test_records), len(test_records))
    outs = [str(tmp_path / name) for name in ("a", "b")]
    assert main(["evaluate", "--model", good_model.root, "--data", tiny_dataset.root, "--out", outs[0],
                 "--max-test-examples", "10", "--batch-size", "8"]) == 0
    assert f"on 16 of {len(test_records)} (--max-test-examples) test examples" in capsys.readouterr().out
    again = run(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=outs[1],
                               max_test_examples=10, batch_size=8))
    metrics = [uri.read_json(EvaluationLayout(out).metrics) for out in outs]
    assert [m["examples"] for m in metrics] == [16, 16] and again.examples == 16
    assert (metrics[0]["test_records"], metrics[0]["max_test_examples"]) == (len(test_records), 10)
    assert all(m["levels"]["2"]["examples"] == 16 for m in metrics)
    assert metrics[0]["test_fingerprint"] == metrics[1]["test_fingerprint"] != full.test_fingerprint
    assert again.sampled and not full.sampled
    assert f"Scored 16 test records of the test split's {len(test_records)}" in Path(
        EvaluationLayout(outs[0]).html).read_text()
    assert "Scored" not in Path(EvaluationLayout(str(tmp_path / "full")).html).read_text()
    # A bound over the split's size scores all of it, and says nothing.
    whole = run(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=str(tmp_path / "c"),
                               max_test_examples=1000))
    assert whole.test_fingerprint == full.test_fingerprint and not whole.sampled
    assert main(["evaluate", "--model", good_model.root, "--data", tiny_dataset.root, "--out", str(tmp_path / "d"),
                 "--max-test-examples", "-1"]) == 2
    assert "--max-test-examples=-1: must be >= 0 (0 = all)" in capsys.readouterr().err


def test_a_bound_marks_a_sample_without_the_split_size(good_model, tiny_dataset, tmp_path, capsys):
    """A manifest without split counts (an older build, or another tool's): the CLI summary, report.json and
    the page still say when the bound left records unscored, by the one rule all three read."""
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset.root, data)
    manifest = json.loads((data / "manifest.json").read_text())
    del manifest["counts"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    out = str(tmp_path / "bound")
    assert main(["evaluate", "--model", good_model.root, "--data", str(data), "--out", out,
                 "--max-test-examples", "10", "--batch-size", "8"]) == 0
    assert "on 16 (--max-test-examples) test examples" in capsys.readouterr().out
    report = uri.read_json(str(Path(out) / "report.json"))
    assert (report["test_records"], report["examples"], report["sampled"]) == (None, 16, True)
    assert "Scored 16 test records (--max-test-examples 10)" in Path(EvaluationLayout(out).html).read_text()
    whole = run(EvaluateConfig(model_uri=good_model.root, data_uri=str(data), out_uri=str(tmp_path / "whole"),
                               max_test_examples=1000))
    assert not whole.sampled and "Scored" not in Path(EvaluationLayout(whole.out_uri).html).read_text()


def test_every_flag_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    for flag in ("--model", "--data", "--out", "--business-value", "--baseline", "--mlflow-tracking-uri",
                 "--slice-columns", "--min-weighted-score", "--max-regression"):
        assert flag in text
