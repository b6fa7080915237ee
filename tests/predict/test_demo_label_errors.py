"""Suspect labels find the wrong labels planted in the demo catalog, in evaluate and in predict.

A real run of the stages on a small demo catalog whose generator gives 8 % of the products the
category of a class under another level-1 category than their title and image show (truth.json
``wrong_label``): ingest -> dedupe -> tfrecord-build -> train -> evaluate, whose cleanlab suspects
cover the test split, then predict on a fresh demo slice (another seed, with its own planted
errors), whose ``suspect_label`` covers every scored product. The model is the cheapest that learns
the demo's classes: title only, 30 epochs.

Recall is measured on the planted errors each stage scores, and precision on what it flags. With
8 % of the products planted, flags drawn at random would have a precision near 0.08, so the
precision floors fail for a flag that does not look at the model.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import EvaluationLayout, PredictionLayout
from ecom_kfp.dedupe import DedupeConfig
from ecom_kfp.dedupe import run as dedupe
from ecom_kfp.demo import DemoCatalogConfig, DemoCatalogReport, generate
from ecom_kfp.evaluate import EvaluateConfig
from ecom_kfp.evaluate import run as evaluate
from ecom_kfp.ingest import IngestConfig
from ecom_kfp.ingest import run as ingest
from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.ingest.source_policy import SourcePolicy
from ecom_kfp.pipelines.local_scoring import planted_label_errors
from ecom_kfp.predict import PredictConfig
from ecom_kfp.predict import run as predict
from ecom_kfp.tfrecord_build import TFRecordBuildConfig
from ecom_kfp.tfrecord_build import run as build
from ecom_kfp.train import TrainConfig
from ecom_kfp.train import run as train
from tests.tfrecord_build.test_build import read_records

pytestmark = pytest.mark.e2e

PRODUCTS = 600
LABEL_ERROR_RATE = 0.08
#: A larger test split than the default 0.15, so that evaluate sees enough planted errors.
SPLITS = (0.55, 0.15, 0.3)
IMAGE_SIZE = 32


@dataclass(frozen=True)
class Scored:
    """Planted wrong labels among the products a stage scored, and the products it flagged."""

    planted: set[str]
    flagged: set[str]

    @property
    def recall(self) -> float:
        return len(self.planted & self.flagged) / len(self.planted)

    @property
    def precision(self) -> float:
        return len(self.planted & self.flagged) / len(self.flagged) if self.flagged else 0.0


def _demo(out: Path, seed: int) -> tuple[DemoCatalogReport, set[str]]:
    demo = generate(DemoCatalogConfig(out=str(out), products=PRODUCTS, seed=seed, image_size=IMAGE_SIZE,
                                      label_error_rate=LABEL_ERROR_RATE, progress=False))
    return demo, set(uri.read_json(demo.truth)["wrong_label"])


def _ingest(demo: DemoCatalogReport, out: Path) -> str:
    ingest(IngestConfig(catalog=demo.catalog, out=str(out), format="jsonl", images_base=demo.images,
                        business_value_uri=demo.business_value, progress=False,
                        fetch=FetchConfig(policy=SourcePolicy(allow_local_files=True))))
    return str(out)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scored, str]:
    """Evaluate's suspects on the test split of a model trained on a catalog with planted errors."""
    root = tmp_path_factory.mktemp("demo-label-errors")
    demo, planted = _demo(root / "catalog", seed=0)
    products = _ingest(demo, root / "ingest")
    dedupe(DedupeConfig(products_uri=products, out_uri=str(root / "dedupe"), progress=False))
    build(TFRecordBuildConfig(products=str(root / "dedupe"), out=str(root / "dataset"), image_size=IMAGE_SIZE,
                              split_fractions=SPLITS, min_class_count=3, progress=False))
    # In input order: the flags' precision then does not depend on how loaded the machine is.
    train(TrainConfig(data=str(root / "dataset"), out=str(root / "model"), inputs="title", epochs=30,
                      image_size=IMAGE_SIZE, deterministic=True))
    evaluate(EvaluateConfig(model_uri=str(root / "model"), data_uri=str(root / "dataset"),
                            out_uri=str(root / "evaluation")))
    test = {r["product_id"].decode() for r in read_records(str(root / "dataset"))["test"]}
    with open(EvaluationLayout(str(root / "evaluation")).suspect_labels, encoding="utf-8") as fh:
        flagged = {row["product_id"] for row in csv.DictReader(fh)}
    return Scored(planted & test, flagged), str(root / "model")


@pytest.fixture(scope="module")
def predicted(evaluated: tuple[Scored, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Scored, str, str]:
    """Predict's suspect flags on a fresh demo slice scored with the same model, its truth.json and output."""
    root = tmp_path_factory.mktemp("demo-label-errors-fresh")
    demo, planted = _demo(root / "catalog", seed=1000)
    products = _ingest(demo, root / "ingest")
    out = str(root / "predictions")
    predict(PredictConfig(products_uri=products, model_uri=evaluated[1], out_uri=out, progress=False))
    rows = pq.read_table(PredictionLayout(out).predictions).to_pylist()
    scored = Scored(planted & {r["product_id"] for r in rows}, {r["product_id"] for r in rows if r["suspect_label"]})
    return scored, demo.truth, out


def test_evaluate_suspects_find_most_planted_errors_of_the_test_split(evaluated: tuple[Scored, str]) -> None:
    scored = evaluated[0]
    assert len(scored.planted) >= 8, scored  # enough planted errors in the test split to judge
    assert scored.recall >= 0.7, scored
    assert scored.precision >= 0.6, scored


def test_predict_flags_most_planted_errors_of_a_fresh_catalog(predicted: tuple[Scored, str, str]) -> None:
    scored = predicted[0]
    assert len(scored.planted) >= 20, scored
    assert scored.recall >= 0.7, scored
    assert scored.precision >= 0.6, scored


def test_the_demo_summary_counts_the_flagged_planted_errors(predicted: tuple[Scored, str, str]) -> None:
    """What ``make demo`` prints after scoring its fresh slice."""
    scored, truth, out = predicted
    assert planted_label_errors(truth, out) == {
        "planted": len(uri.read_json(truth)["wrong_label"]), "scored": len(scored.planted),
        "flagged": len(scored.planted & scored.flagged), "suspects": len(scored.flagged)}
