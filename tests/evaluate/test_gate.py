"""The blessing gate with and without a baseline."""

from __future__ import annotations

from ecom_kfp.evaluate.config import GateConfig
from ecom_kfp.evaluate.gate import ABSOLUTE, CHANGE, Baseline, decide
from ecom_kfp.evaluate.metrics import LevelMetrics


def _metrics(level: int, accuracy: float, weighted: float) -> LevelMetrics:
    return LevelMetrics(level=level, examples=10, accuracy=accuracy, weighted_score=weighted, top_k_accuracy=1.0,
                        k=5, macro_f1=0.5, weighted_f1=0.5, log_loss=0.3, confidence_threshold=0.5,
                        precision_at_threshold=0.9, coverage_at_threshold=0.8, target_precision=0.95,
                        threshold_for_target_precision=None, coverage_at_target_precision=0.0)


def test_no_baseline_only_absolute_thresholds_and_says_so():
    blessing = decide([_metrics(1, 0.9, 0.8), _metrics(2, 0.6, 0.7)], GateConfig(min_weighted_score=0.75), None,
                      "no --baseline and no --mlflow-tracking-uri")
    assert not blessing.blessed
    assert {c.kind for c in blessing.checks} == {ABSOLUTE}
    assert len(blessing.checks) == 4
    failed = [c.name for c in blessing.checks if not c.passed]
    assert failed == ["level_2.weighted_score >= 0.75"]
    assert any("no baseline" in r and "only absolute thresholds apply" in r for r in blessing.reasons)
    assert blessing.baseline is None


def test_change_thresholds_against_baseline():
    baseline = Baseline("models:/m@champion (version 1)", "registry tags",
                        {1: {"accuracy": 0.9, "weighted_score": 0.9}, 2: {"accuracy": 0.8, "weighted_score": 0.8}}, "1")
    gate = GateConfig(max_regression=0.005)
    within = decide([_metrics(1, 0.896, 0.95), _metrics(2, 0.8, 0.8)], gate, baseline)
    assert within.blessed, within.reasons
    assert sum(c.kind == CHANGE for c in within.checks) == 4
    worse = decide([_metrics(1, 0.9, 0.9), _metrics(2, 0.79, 0.85)], gate, baseline)
    assert not worse.blessed
    assert [c.name for c in worse.checks if not c.passed] == ["level_2.accuracy >= baseline - 0.005"]
    assert worse.baseline["model_version"] == "1"
    assert any("compared with models:/m@champion" in r for r in worse.reasons)
