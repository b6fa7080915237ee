"""A tiny real catalog (ingest layout, with planted wrong labels and unscorable images) and a tiny real model."""

from __future__ import annotations

import json

import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.digests import write_model_digests
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.testing import tiny_classifier as tiny
from tests.predict.helpers import THRESHOLDS, Catalog, train_counts, write_catalog


@pytest.fixture(scope="session")
def predict_model(tmp_path_factory: pytest.TempPathFactory, tiny_dataset) -> ModelLayout:
    """The tiny image + title model, with train counts in its manifest and a thresholds.json."""
    train = tiny.make_records(20, seed=2)
    model = tiny.export_model(str(tmp_path_factory.mktemp("predict-model") / "model"), train, tiny_dataset)
    manifest = uri.read_json(model.manifest)
    manifest["counts"] = {**manifest.get("counts", {}), "train": train_counts(train)}
    uri.write_text(model.manifest, json.dumps(manifest, sort_keys=True))
    THRESHOLDS.save(model.labels)
    write_model_digests(model)  # as its producer would: the manifest and labels changed above
    return model


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """100 products (25 per leaf), 10 with a planted wrong label, 3 that cannot be scored."""
    return write_catalog(str(tmp_path_factory.mktemp("catalog") / "ingest"), tiny.make_records(25, seed=7))
