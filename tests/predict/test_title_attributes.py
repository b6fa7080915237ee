"""Catalog attributes the model reads after the title (``tfrecord-build --title-attributes``) reach
the serving signature from batch predict and the MLflow pyfunc, as the build wrote them (a tiny real
SavedModel, a real MLflow Model directory; no mocks)."""

from __future__ import annotations

from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.features import model_title
from ecom_kfp.contracts.labels import class_name
from ecom_kfp.contracts.layouts import PredictionLayout
from ecom_kfp.predict import PredictConfig, run
from ecom_kfp.testing import tiny_classifier as tiny
from tests.predict.helpers import write_catalog

#: The catalog column that names each product's kind; the titles no longer do.
KIND = "Product Kind"


def _moved(records: list[tiny.Record]) -> tuple[list[tiny.Record], dict[str, dict]]:
    """The records with the keyword moved from the title ("slim shirt") to the catalog row
    (``{"Product Kind": "shirt"}``), leaving "slim item"."""
    titles, sources = [], {}
    for record in records:
        adjective, keyword = record.title.split()
        titles.append(replace(record, title=f"{adjective} item"))
        sources[record.product_id] = {KIND: keyword, "colour": "red"}
    return titles, sources


@pytest.fixture(scope="module")
def attribute_model(tmp_path_factory):
    """A tiny model trained on titles composed as the build composes them with ``--title-attributes
    product_kind`` (the column named in another spelling, as a user may), its manifest saying so."""
    root = tmp_path_factory.mktemp("attribute-model")
    records, sources = _moved(tiny.make_records(20, seed=2, title_noise=0.0))
    dataset = tiny.write_dataset(str(root / "dataset"), tiny.make_records(5, seed=3))
    manifest = uri.read_json(dataset.manifest)
    manifest["feature_spec"]["title_attributes"] = ["product_kind"]
    uri.write_json(dataset.manifest, manifest)
    trained_on = [replace(r, title=model_title(r.title, sources[r.product_id], ["product_kind"])) for r in records]
    assert trained_on[0].title.endswith(" productkind" + sources[records[0].product_id][KIND])
    return tiny.export_model(str(root / "model"), trained_on, dataset)


def _level_2_accuracy(out: str, records: list[tiny.Record]) -> float:
    truth = {r.product_id: class_name(tuple(r.category_path.split(" > ")), 2) for r in records}
    rows = pq.read_table(PredictionLayout(out).predictions).to_pylist()
    assert len(rows) == len(records)
    return sum(r["top_classes"][1][0] == truth[r["product_id"]] for r in rows) / len(rows)


def test_predict_reads_the_attributes_the_model_was_trained_on_from_the_catalog_rows(attribute_model, tmp_path):
    records, sources = _moved(tiny.make_records(15, seed=7, title_noise=0.0))
    with_rows = write_catalog(str(tmp_path / "with"), records, faults=False, sources=sources)
    without_rows = write_catalog(str(tmp_path / "without"), records, faults=False)
    for catalog, out in ((with_rows, "with-out"), (without_rows, "without-out")):
        run(PredictConfig(model_uri=attribute_model.root, products_uri=catalog.root, out_uri=str(tmp_path / out),
                          progress=False, fallback_threshold=0.5))
    # Level 2 (shirt or jeans, sneaker or sandal: one colour each) is told only by the attribute.
    assert _level_2_accuracy(str(tmp_path / "with-out"), records) >= 0.95
    assert _level_2_accuracy(str(tmp_path / "without-out"), records) <= 0.75


def test_the_mlflow_pyfunc_takes_the_attributes_as_columns(attribute_model, tmp_path):
    import mlflow
    import pandas as pd

    from ecom_kfp.push import mlflow_model

    records, sources = _moved(tiny.make_records(10, seed=8, title_noise=0.0))
    model = mlflow.pyfunc.load_model(mlflow_model.save(attribute_model.root, str(tmp_path / "mlflow-model")))
    inputs = {c.name: c.required for c in model.metadata.get_input_schema().inputs}
    assert inputs == {"image": False, "image_uri": False, "title": True, "product_kind": False}
    frame = pd.DataFrame({"image": [r.image_jpeg for r in records], "title": [r.title for r in records],
                          "product_kind": [sources[r.product_id][KIND] for r in records]})
    out = model.predict(frame)
    truth = [class_name(tuple(r.category_path.split(" > ")), 2) for r in records]
    predicted = [classes[0] for classes in out["level_2_classes"]]
    assert sum(p == t for p, t in zip(predicted, truth)) / len(records) >= 0.95
    assert set(out["error"]) == {""}

