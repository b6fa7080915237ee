"""Evaluate's blessing gate against the champion in a real MLflow registry (pushed by the push stage)."""

from __future__ import annotations

import pytest

from ecom_kfp import uri
from ecom_kfp.contracts import digests
from ecom_kfp.contracts.layouts import EvaluationLayout
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.stage import run as evaluate
from ecom_kfp.push.config import PushConfig
from ecom_kfp.push.stage import run as push
from ecom_kfp.testing import tiny_classifier as tiny


@pytest.fixture()
def name(request: pytest.FixtureRequest) -> str:
    return "c-" + request.node.name.replace("_", "-")[:60]


def _evaluate(model, dataset, out, mlflow, name):
    report = evaluate(EvaluateConfig(model_uri=model.root, data_uri=dataset.root, out_uri=out,
                                     mlflow_tracking_uri=mlflow.tracking_uri, registered_model_name=name))
    return report, uri.read_json(EvaluationLayout(out).blessing)


def test_no_champion_blesses_on_thresholds_alone(mlflow, weak_model, tiny_dataset, tmp_path, name):
    report, blessing = _evaluate(weak_model, tiny_dataset, str(tmp_path / "e"), mlflow, name)
    assert report.blessed and blessing["baseline"] is None
    assert any(f"no models:/{name}@champion in the registry" in r for r in blessing["reasons"])


def test_worse_challenger_is_not_blessed_against_the_champion(mlflow, good_model, weak_model, tiny_dataset,
                                                               tmp_path, name, monkeypatch):
    champion_eval = str(tmp_path / "champion-eval")
    assert _evaluate(good_model, tiny_dataset, champion_eval, mlflow, name)[0].blessed
    push(PushConfig(model_uri=good_model.root, evaluation_uri=champion_eval, registry_uri=mlflow.tracking_uri,
                    out_uri=str(tmp_path / "push"), registered_model_name=name))
    # same test split: the champion's metrics come from its registry tags
    report, blessing = _evaluate(weak_model, tiny_dataset, str(tmp_path / "weak"), mlflow, name)
    assert not report.blessed
    assert blessing["baseline"]["method"] == "registry tags"
    assert blessing["baseline"]["description"] == f"models:/{name}@champion (version 1)"
    assert any(not c["passed"] and c["kind"] == "change" for c in blessing["checks"])
    # the champion itself passes against itself
    assert _evaluate(good_model, tiny_dataset, str(tmp_path / "again"), mlflow, name)[0].blessed

    # another test split: the champion's model is downloaded from the registry and re-evaluated on it
    other = tiny.write_dataset(str(tmp_path / "other-data"), tiny.make_records(8, seed=7))
    weak_other = tiny.export_model(str(tmp_path / "weak-other"), tiny.make_records(20, seed=2), other, use_title=False)
    copied = []
    monkeypatch.setattr(digests, "private_copy", _recording(digests.private_copy, copied))
    report, blessing = _evaluate(weak_other, other, str(tmp_path / "weak-other-eval"), mlflow, name)
    assert blessing["baseline"]["method"] == "re-evaluated"
    assert not report.blessed
    # The candidate is copied before it is checked; the champion, downloaded into evaluate's own
    # scratch directory, is checked where it landed.
    assert copied == [weak_other.root]


def _recording(copy, copied: list[str]):
    def recorded(root, parts):
        copied.append(root)
        return copy(root, parts)
    return recorded
