"""An averaged model goes the way a trained one does: evaluate, push to a real ``mlflow server``,
batch prediction from the registry."""

from __future__ import annotations

import pytest

from ecom_kfp.ensemble.config import EnsembleConfig
from ecom_kfp.ensemble.stage import run
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.stage import run as evaluate
from ecom_kfp.predict.config import PredictConfig
from ecom_kfp.predict.stage import run as predict
from ecom_kfp.push.config import PushConfig
from ecom_kfp.push.stage import run as push
from ecom_kfp.testing import tiny_classifier as tiny
from tests.predict.helpers import write_catalog


@pytest.mark.e2e
def test_an_ensemble_is_evaluated_pushed_and_scores_a_catalog_from_the_registry(mlflow, good_model, weak_model,
                                                                                tiny_dataset, tmp_path) -> None:
    model, evaluation, name = str(tmp_path / "ensemble"), str(tmp_path / "evaluation"), "m-ensemble-last-mile"
    run(EnsembleConfig(model_uris=[good_model.root, weak_model.root], out_uri=model))
    evaluated = evaluate(EvaluateConfig(model_uri=model, data_uri=tiny_dataset.root, out_uri=evaluation))
    assert evaluated.blessed
    pushed = push(PushConfig(model_uri=model, evaluation_uri=evaluation, registry_uri=mlflow.tracking_uri,
                             out_uri=str(tmp_path / "push"), serving_uri=str(tmp_path / "serving"),
                             registered_model_name=name))
    assert (pushed.version, pushed.aliases) == ("1", ["challenger", "champion"])
    catalog = write_catalog(str(tmp_path / "catalog"), tiny.make_records(6, seed=7))
    report = predict(PredictConfig(products_uri=catalog.root, model_uri=f"models:/{name}@champion",
                                   registry_uri=mlflow.tracking_uri, out_uri=str(tmp_path / "predictions"),
                                   progress=False))
    assert report.input == len(catalog.product_ids)
    assert report.scored + report.rejected == report.input
    assert report.scored == report.input - len(catalog.unscorable)
    assert report.agreement_rate > 0.5
