"""Smoke test of the two inference benchmarks (benchmarks/bench_evaluate.py, bench_predict.py) at tiny
sizes: a 60-product myntra-dev dataset and model, built once and shared through ``--work``, and every
approach each benchmark compares run for real on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks import run_benchmark

pytestmark = pytest.mark.slow


def _bench(name: str, work: Path, myntra_dir: Path, *flags: str) -> dict:
    """``benchmarks/<name>.py`` on the 60-product dataset cached under ``work``: the JSON it prints."""
    return run_benchmark(name, "--work", str(work), "--dataset-limit", "60", *flags,
                         env={"ECOM_KFP_SHARED_DATA": str(myntra_dir.parent)})


def test_evaluate_and_predict_benchmarks_measure_ours_and_the_alternative(tmp_path: Path, myntra_dir: Path) -> None:
    evaluate = _bench("bench_evaluate", tmp_path, myntra_dir, "--batch-size", "8", "--repeats", "2")
    passes = {"evaluate", "keras_predict", "keras_predict_model_in_memory", "train_input_pipeline"}
    assert set(evaluate["examples"]) == passes
    assert len(set(evaluate["examples"].values())) == 1 and evaluate["examples"]["evaluate"] > 0  # the same split
    for rates, ratios in (("examples_per_second", "evaluate_over"),
                          ("examples_per_cpu_second", "evaluate_over_per_cpu_second")):
        assert all(evaluate[rates][name] > 0 for name in passes)
        assert evaluate[ratios]["keras_predict"] == pytest.approx(
            evaluate[rates]["evaluate"] / evaluate[rates]["keras_predict"])

    # The same model (cached under --work) scores a 30-product catalog both ways.
    predict = _bench("bench_predict", tmp_path, myntra_dir, "--products", "30", "--memory-sizes", "30,60")
    assert predict["predict"]["products"] == predict["user_loop"]["products"] == 30
    assert predict["ratio_products_per_second"] == pytest.approx(
        predict["predict"]["products_per_second"] / predict["user_loop"]["products_per_second"])
    assert set(predict["peak_memory_mb"]) == {"30", "60"}
    assert [path.name for path in tmp_path.glob("bench-model-*")] == ["bench-model-myntra-dataset-64-60-small-cnn-64"]
