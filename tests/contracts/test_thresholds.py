"""The ``thresholds.json`` contract (evaluate writes it, predict and the MLflow pyfunc read it)."""

import math

import numpy as np
import pytest

from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.contracts.serving import LevelThreshold, Thresholds


def _thresholds() -> Thresholds:
    return Thresholds(0.95, (
        LevelThreshold(1, 0.5, 0.96, 0.9, (0.2, 0.5, 0.8), (0.90, 0.96, 0.99), (1.0, 0.9, 0.6)),
        LevelThreshold(2, 0.7, 0.95, 0.8),
    ), temperature=(2.0, 1.0))


def test_round_trip_through_the_model_labels_dir(tmp_path):
    model = ModelLayout(str(tmp_path))
    written = _thresholds().save(model.labels)
    assert written == model.thresholds
    assert Thresholds.load(model.labels) == _thresholds()
    assert Thresholds.load(str(tmp_path / "elsewhere")) is None


def test_threshold_for_another_precision_comes_from_the_curve():
    t = _thresholds()
    assert t.threshold(1) == 0.5
    assert t.threshold(1, 0.95) == 0.5
    assert t.threshold(1, 0.98) == 0.8
    assert t.threshold(1, 0.85) == 0.2
    assert t.threshold(1, 0.999) == math.inf
    with pytest.raises(ValueError, match="no precision curve"):
        t.threshold(2, 0.99)


def test_temperature_flattens_probabilities_and_keeps_the_ranking():
    p = np.array([[0.8, 0.15, 0.05]], dtype=np.float32)
    calibrated = _thresholds().calibrate(1, p)
    assert calibrated.sum() == pytest.approx(1.0)
    assert calibrated[0, 0] < 0.8 and list(np.argsort(-calibrated[0])) == [0, 1, 2]
    assert _thresholds().calibrate(2, p) is p


def test_bad_files_are_refused():
    with pytest.raises(ValueError, match="levels must be 1..n"):
        Thresholds(0.9, (LevelThreshold(2, 0.5, 0.9, 0.5),))
    with pytest.raises(ValueError, match="ascending"):
        LevelThreshold(1, 0.5, 0.9, 0.5, (0.6, 0.5), (0.9, 0.9), (0.5, 0.6))
