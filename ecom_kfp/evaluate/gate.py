"""The blessing gate: absolute thresholds, plus change thresholds against a baseline when one exists.

Every check is recorded in ``blessing.json`` with its value, threshold and outcome. The model is
blessed when every check passes. Without a baseline only the absolute checks apply, and
``blessing.json`` says so in its reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ecom_kfp.evaluate.config import GateConfig
from ecom_kfp.evaluate.metrics import LevelMetrics

ABSOLUTE = "absolute"
CHANGE = "change"
#: Metrics compared with the baseline (higher is better for both).
COMPARED = ("accuracy", "weighted_score")


@dataclass(frozen=True)
class Baseline:
    """Metrics of the model the candidate must not be worse than.

    Attributes:
        description: What it is, e.g. ``models:/ecom-product-category@champion (version 3)``.
        method: ``registry tags`` (metrics recorded at push, same test split) or ``re-evaluated``
            (its model scored on this test split now).
        metrics: Level -> metric name -> value.
        model_version: Registry version, when the baseline comes from the registry.
    """

    description: str
    method: str
    metrics: dict[int, dict[str, float]]
    model_version: str | None = None


@dataclass(frozen=True)
class Check:
    """One gate check."""

    name: str
    kind: str
    level: int
    metric: str
    value: float
    threshold: float
    passed: bool
    baseline_value: float | None = None


@dataclass
class Blessing:
    """The gate's decision (``blessing.json``)."""

    blessed: bool
    checks: list[Check]
    reasons: list[str]
    baseline: dict | None = field(default=None)


def decide(metrics: Sequence[LevelMetrics], gate: GateConfig, baseline: Baseline | None,
           no_baseline_reason: str = "") -> Blessing:
    """Run every check; the candidate is blessed when all pass.

    Args:
        metrics: The candidate's metrics, one entry per level.
        gate: Thresholds.
        baseline: The model to compare with, or None.
        no_baseline_reason: Why there is no baseline (stated in the reasons).
    """
    checks: list[Check] = []
    for level in metrics:
        for metric, floor in (("accuracy", gate.min_accuracy), ("weighted_score", gate.min_weighted_score)):
            value = getattr(level, metric)
            checks.append(Check(f"level_{level.level}.{metric} >= {floor:g}", ABSOLUTE, level.level, metric,
                                value, floor, value >= floor))
        if baseline is None or level.level not in baseline.metrics:
            continue
        for metric in COMPARED:
            base = baseline.metrics[level.level].get(metric)
            if base is None:
                continue
            value = getattr(level, metric)
            floor = base - gate.max_regression
            # The tolerance absorbs float noise when a model is compared with itself.
            checks.append(Check(f"level_{level.level}.{metric} >= baseline - {gate.max_regression:g}", CHANGE,
                                level.level, metric, value, floor, value >= floor - 1e-9, base))
    failed = [c for c in checks if not c.passed]
    reasons = [f"FAILED {c.name}: {c.value:.4f} < {c.threshold:.4f}" for c in failed]
    if baseline is None:
        reasons.append("no baseline" + (f" ({no_baseline_reason})" if no_baseline_reason else "")
                       + ": only absolute thresholds apply")
    else:
        reasons.append(f"compared with {baseline.description} ({baseline.method})")
    if not failed:
        reasons.insert(0, f"all {len(checks)} checks passed")
    baseline_info = None if baseline is None else {
        "description": baseline.description, "method": baseline.method,
        "model_version": baseline.model_version,
        "metrics": {str(k): v for k, v in baseline.metrics.items()}}
    return Blessing(not failed, checks, reasons, baseline_info)
