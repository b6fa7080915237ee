"""Smoke test of ``benchmarks/bench_evaluate_memory.py`` at a tiny size."""

from __future__ import annotations

import numpy as np
import pytest

from tests.benchmarks import import_benchmark


def test_every_step_of_the_stage_is_measured_against_the_scores() -> None:
    bench = import_benchmark("bench_evaluate_memory")
    result = bench.measure(400, 30)
    assert set(result["steps"]) == {"fit_temperature", "fit_temperature_cross_checked", "from_probabilities",
                                    "level_metrics", "calibrate_level", "temperature_scale+find_suspects"}
    assert result["float32_scores_mb"] == pytest.approx(400 * 30 * 4 / 1e6, abs=0.05)
    assert all(step["bytes_per_example_class"] > 0 for step in result["steps"].values())
    assert result["largest_peak_mb"] == max(s["peak_mb"] for s in result["steps"].values())
    assert result["largest_peak_over_float32_scores"] == pytest.approx(
        max(s["bytes_per_example_class"] for s in result["steps"].values()) / 4, rel=0.05)


def test_synthetic_scores_are_softmax_rows_led_by_their_label_mostly() -> None:
    probabilities, labels = import_benchmark("bench_evaluate_memory").synthetic_softmax(1000, 20)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert 0.5 < (probabilities.argmax(axis=1) == labels).mean() < 1.0
