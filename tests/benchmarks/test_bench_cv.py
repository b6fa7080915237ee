"""Smoke test of the cross-validated quality benchmark (benchmarks/bench_cv.py) at tiny settings:
two folds of 60 myntra-dev products, one epoch, through the real build, training and serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_cv_benchmark_tests_every_product_once_on_identical_folds(tmp_path: Path, myntra_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ECOM_KFP_SHARED_DATA": str(myntra_dir.parent)}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_cv.py"), "--work", str(tmp_path), "--limit", "60",
         "--folds", "2", "--epochs", "1", "--image-size", "32", "--models", "title,image,baseline"],
        capture_output=True, text=True, env=env, check=False, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    models = result["models"]
    assert set(models) == {"title", "image", "baseline", "title+baseline"}  # the last: mean of two probabilities
    for model in models.values():
        assert [f["fold"] for f in model["per_fold"]] == [0, 1]
        assert sum(f["products"] for f in model["per_fold"]) == 60  # each product tested exactly once
        assert all(0.0 <= f[f"level_{k}"] <= 1.0 for f in model["per_fold"] for k in (1, 2, 3))
        assert model["level_3"]["folds"] == 2
        assert set(model["calibration"]) == {"level_1", "level_2", "level_3"}
    assert models["title"]["minus_baseline"]["level_1"]["mean"] == pytest.approx(
        models["title"]["level_1"]["mean"] - models["baseline"]["level_1"]["mean"])
    assert len(result["late_fusion"]["per_fold"]) == 2
