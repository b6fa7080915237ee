"""Batch prediction on a tiny real catalog with a tiny real SavedModel (no mocks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecom_kfp import uri
from ecom_kfp.cli import main
from ecom_kfp.contracts import serving, tables
from ecom_kfp.contracts.digests import DigestError
from ecom_kfp.contracts.labels import OTHER, class_name
from ecom_kfp.contracts.layouts import ModelLayout, PredictionLayout
from ecom_kfp.contracts.serving import load_signature
from ecom_kfp.predict import PredictConfig, run
from ecom_kfp.predict.model import open_model
from ecom_kfp.predict.scoring import THRESHOLDS_FALLBACK, THRESHOLDS_FROM_CURVE, THRESHOLDS_FROM_MODEL
from ecom_kfp.settings import ConfigError
from ecom_kfp.testing import hostile
from ecom_kfp.testing import tiny_classifier as tiny
from tests.predict.helpers import THRESHOLDS, write_catalog


def _tables(out: str):
    layout = PredictionLayout(out)
    return pq.read_table(layout.predictions), pq.read_table(layout.rejects)


def test_scores_a_catalog_and_accounts_for_every_product(predict_model, catalog, tmp_path):
    out = str(tmp_path / "predictions")
    report = run(PredictConfig(products_uri=catalog.root, model_uri=predict_model.root, out_uri=out, batch_size=16,
                               progress=False))
    predictions, rejects = _tables(out)
    assert predictions.schema.equals(tables.PREDICTIONS)
    assert predictions.num_rows + rejects.num_rows == report.input == len(catalog.product_ids)
    assert (report.scored, report.rejected) == (predictions.num_rows, rejects.num_rows)
    assert dict(zip(rejects.column("product_id").to_pylist(), rejects.column("reason").to_pylist())) \
        == catalog.unscorable
    rows = predictions.to_pylist()
    assert {len(r["top_classes"]) for r in rows} == {2}
    assert {len(r["top_classes"][1]) for r in rows} == {3}
    for row in rows:
        assert row["top_probabilities"][1] == sorted(row["top_probabilities"][1], reverse=True)
        assert row["predicted_path"] == row["top_classes"][1][0].split(" > ")
        assert row["accepted"] == (row["confidence"] >= row["threshold"] == THRESHOLDS.levels[1].threshold)
    assert report.thresholds == [0.6, 0.5] and report.thresholds_source == THRESHOLDS_FROM_MODEL
    assert report.accepted == sum(r["accepted"] for r in rows)
    assert 0 < report.accepted < report.scored
    assert set(report.drift) == {"level_1", "level_2"} and 0 <= report.drift["level_2"].total_variation < 0.3
    assert uri.read_json(PredictionLayout(out).report)["scored"] == report.scored
    html = uri.read_text(PredictionLayout(out).html)
    shown = uri.read_json(PredictionLayout(out).samples)  # what the page shows, for a merge of shards
    assert "Most confident disagreements" in html and shown["disagreements"]
    disagreeing = {r["product_id"]: r["confidence"] for r in rows if r["agrees_with_catalog"] is False}
    assert [d["confidence"] for d in shown["disagreements"]] == \
        sorted(disagreeing.values(), reverse=True)[:4 * shown["limit"]]
    # Each shown product with its own title and picture, whatever was rejected beside it in its batch.
    products = {r["product_id"]: r for r in pq.read_table(catalog.layout.products).to_pylist()}
    for d in shown["disagreements"] + [s for kept in shown["samples"].values() for s in kept]:
        assert (d["title"], d["image_uri"]) == (products[d["product_id"]]["title"], products[d["product_id"]]["image_uri"])
        assert d["product_id"] in html and d["thumbnail"] in html


def test_planted_wrong_labels_are_flagged_suspect(predict_model, catalog, tmp_path):
    """Planted wrong labels are found; every other suspect has a title that names another class
    (the tiny catalog's title noise: the label contradicts the title, as on real catalogs)."""
    out = str(tmp_path / "predictions")
    report = run(PredictConfig(products_uri=catalog.root, model_uri=predict_model.root, out_uri=out, progress=False))
    rows = _tables(out)[0].to_pylist()
    suspects = {r["product_id"] for r in rows if r["suspect_label"]}
    found = suspects & catalog.wrong_labels
    assert len(found) >= 0.8 * len(catalog.wrong_labels), (sorted(suspects), sorted(catalog.wrong_labels))
    assert suspects - catalog.wrong_labels <= catalog.noisy_titles
    assert report.suspect == len(suspects)
    for row in rows:  # suspect: at some level of the catalog's path, another class passes the level's threshold
        given = [class_name(row["catalog_path"], level) for level in range(1, len(row["catalog_path"]) + 1)]
        assert row["suspect_label"] == any(
            classes[0] not in (name, OTHER) and probabilities[0] >= threshold
            for classes, probabilities, threshold, name in zip(row["top_classes"], row["top_probabilities"],
                                                                report.thresholds, given))
        if not row["agrees_with_catalog"] and row["confidence"] >= row["threshold"]:
            assert row["suspect_label"]  # a confident disagreement at the predicted level always is one
    html = uri.read_text(PredictionLayout(out).html)
    assert sorted(found)[0] in html


def test_target_precision_overrides_the_threshold_from_the_curve(predict_model, catalog, tmp_path):
    strict = run(PredictConfig(products_uri=catalog.root, model_uri=predict_model.root, out_uri=str(tmp_path / "p"),
                               target_precision=0.99, progress=False))
    assert strict.thresholds == [0.9, 0.95] and strict.thresholds_source == THRESHOLDS_FROM_CURVE
    default = run(PredictConfig(products_uri=catalog.root, model_uri=predict_model.root, out_uri=str(tmp_path / "d"),
                                progress=False))
    assert strict.accepted < default.accepted


def _swap_first_classes(model: Path) -> None:
    """Swap two class names: the SavedModel still loads, and every prediction of them is mislabelled."""
    path = model / "labels" / "level_2.txt"
    lines = path.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    path.write_text("\n".join(lines) + "\n")


def _edit_graph(model: Path) -> None:
    path = model / "saved_model" / "saved_model.pb"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("tamper", "message"), [
    (_swap_first_classes, "labels/level_2.txt has SHA-256"),
    (_edit_graph, "saved_model/saved_model.pb has SHA-256"),
    (lambda model: (model / "saved_model" / "assets" / "extra.txt").write_text("x"),
     "saved_model/assets/extra.txt is not among the files its producer recorded"),
    (lambda model: (model / "digests.json").unlink(), "no digests.json"),
])
def test_a_tampered_train_output_is_refused_before_anything_loads(predict_model, catalog, tmp_path, capsys,
                                                                 tamper, message):
    model = tmp_path / "model"
    shutil.copytree(predict_model.root, model)
    (model / "saved_model" / "assets").mkdir(exist_ok=True)
    out = tmp_path / "predictions"
    run(PredictConfig(products_uri=catalog.root, model_uri=str(model), out_uri=str(out), progress=False))
    shutil.rmtree(out)  # the untouched copy scores; the same copy tampered is refused
    tamper(model)
    with pytest.raises(DigestError, match=message):
        run(PredictConfig(products_uri=catalog.root, model_uri=str(model), out_uri=str(out), progress=False))
    assert not out.exists()
    assert main(["predict", "--products", catalog.root, "--model", str(model), "--out", str(out),
                 "--no-progress"]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_a_saved_model_swapped_after_the_check_is_not_what_runs(predict_model, tmp_path):
    """predict verifies and loads one private copy: a writer who swaps the shared SavedModel for a
    hostile one once it has been checked (a shared bucket or volume) changes nothing predict runs."""
    import tensorflow as tf

    model = ModelLayout(str(shutil.copytree(predict_model.root, tmp_path / "model")))
    marker = tmp_path / "graph-ran"
    hostile.classifier_writing_a_file(str(tmp_path / "hostile"), str(marker), [len(v) for v in tiny.vocabularies()])
    record = tiny.make_records(1, seed=0)[0]
    with open_model(model.root) as files:
        assert files.description == model.root and not files.saved_model.startswith(model.root)
        shutil.rmtree(model.saved_model)
        shutil.copytree(tmp_path / "hostile", model.saved_model)
        outputs = load_signature(files.saved_model)(image_bytes=tf.constant([record.image_jpeg]),
                                                    title=tf.constant([record.title]))
    assert not marker.exists(), "predict ran the SavedModel swapped in after its check"
    assert outputs[serving.output_key(1)].shape[0] == 1


def test_a_model_without_thresholds_uses_the_fallback_and_refuses_a_target(tmp_path, tiny_dataset, catalog):
    model = tiny.export_model(str(tmp_path / "model"), tiny.make_records(10, seed=3), tiny_dataset)
    report = run(PredictConfig(products_uri=catalog.root, model_uri=model.root, out_uri=str(tmp_path / "p"),
                               fallback_threshold=0.7, progress=False))
    assert report.thresholds == [0.7, 0.7] and report.thresholds_source == THRESHOLDS_FALLBACK
    assert report.drift == {}  # the tiny dataset's manifest has no train counts
    with pytest.raises(ValueError, match="--target-precision"):
        run(PredictConfig(products_uri=catalog.root, model_uri=model.root, out_uri=str(tmp_path / "q"),
                          target_precision=0.9, progress=False))


def test_shards_partition_the_catalog(predict_model, catalog, tmp_path):
    ids, total = [], 0
    for index in range(3):
        out = str(tmp_path / f"shard-{index}")
        report = run(PredictConfig(products_uri=catalog.root, model_uri=predict_model.root, out_uri=out,
                                   shard_index=index, num_shards=3, batch_size=7, progress=False))
        predictions, rejects = _tables(out)
        ids += predictions.column("product_id").to_pylist() + rejects.column("product_id").to_pylist()
        total += report.input
        assert report.input + report.other_shards == len(catalog.product_ids)
    assert sorted(ids) == sorted(catalog.product_ids) and total == len(ids)


def test_products_without_a_catalog_category_get_no_agreement(predict_model, tmp_path):
    catalog = write_catalog(str(tmp_path / "ingest"), tiny.make_records(3, seed=9), faults=False)
    table = uri.read_parquet(catalog.layout.products)
    table = table.set_column(table.schema.get_field_index("category_path"), "category_path",
                             pa.nulls(table.num_rows, table.schema.field("category_path").type))
    uri.write_parquet(table, catalog.layout.products)
    report = run(PredictConfig(products_uri=catalog.root, model_uri=predict_model.root, out_uri=str(tmp_path / "p"),
                               progress=False))
    rows = _tables(str(tmp_path / "p"))[0].to_pylist()
    assert report.with_catalog_category == report.suspect == 0
    assert {(r["agrees_with_catalog"], r["suspect_label"]) for r in rows} == {(None, None)}


def test_cli_prints_the_summary_and_names_bad_flags(predict_model, catalog, tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert main(["predict", "--products", catalog.root, "--model", predict_model.root, "--out", out,
                 "--no-progress", "--top-k", "2"]) == 0
    printed = capsys.readouterr().out
    assert "products scored" in printed and "suspect labels" in printed and "drift level_2" in printed
    assert {len(c) for r in _tables(out)[0].to_pylist() for c in r["top_classes"]} == {2}
    assert main(["predict", "--products", catalog.root, "--model", predict_model.root, "--out", out,
                 "--num-shards", "2", "--shard-index", "2"]) == 2
    assert "--shard-index=2" in capsys.readouterr().err
    assert main(["predict", "--products", catalog.root, "--model", "models:/x@champion", "--out", out]) == 2
    assert "--registry-uri" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--top-k"):
        PredictConfig(products_uri="a", model_uri="b", out_uri="c", top_k=0).validate()
    assert main(["predict", "--products", str(tmp_path / "none"), "--model", predict_model.root, "--out", out]) == 2


def test_reads_and_writes_gcs(predict_model, catalog, tmp_path, gcs_bucket):
    """Products, images, the model and outputs on a real GCS emulator give the local run's predictions."""
    local_out = str(tmp_path / "local")
    run(PredictConfig(products_uri=catalog.root, model_uri=predict_model.root, out_uri=local_out, progress=False))
    remote = uri.join(gcs_bucket, "ingest")
    uri.copy_tree(catalog.root, remote)
    table = uri.read_parquet(catalog.layout.products)
    moved = [u.replace(catalog.root, remote) if u else u for u in table.column("image_uri").to_pylist()]
    table = table.set_column(table.schema.get_field_index("image_uri"), "image_uri",
                             pa.array(moved, type=pa.string()))
    uri.write_parquet(table, uri.join(remote, "products.parquet"))
    out = uri.join(gcs_bucket, "predictions")
    model = uri.join(gcs_bucket, "model")
    uri.copy_tree(predict_model.root, model)
    report = run(PredictConfig(products_uri=remote, model_uri=model, out_uri=out, progress=False))
    with uri.local_copy(PredictionLayout(out).predictions) as remote_predictions:
        assert pq.read_table(remote_predictions).to_pylist() == _tables(local_out)[0].to_pylist()
    assert report.rejected == len(catalog.unscorable) and uri.exists(PredictionLayout(out).html)


def test_shard_pages_open_in_a_browser(tmp_path: Path) -> None:
    from ecom_kfp.predict.html_page import browser_url

    assert browser_url("gs://bucket/run 1/predictions.html") == \
        "https://storage.cloud.google.com/bucket/run%201/predictions.html"
    assert browser_url(str(tmp_path / "p.html")) == (tmp_path / "p.html").resolve().as_uri()
    assert browser_url(str(tmp_path / "a:b" / "p.html")) == (tmp_path / "a:b" / "p.html").resolve().as_uri()
    assert browser_url("https://example.test/p.html") == "https://example.test/p.html"
    for address in ("javascript:alert(1)", "JavaScript://x/%0aalert(1)", "data:text/html,<script>x</script>"):
        assert browser_url(address) is None
