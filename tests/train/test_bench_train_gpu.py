"""``benchmarks/bench_train_gpu.py``: it skips cleanly without a GPU, and its CPU path runs the real
train step (this machine has no GPU, so the GPU path itself is untested here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_train_gpu.py"


def _run(*flags: str) -> tuple[int, dict, str]:
    completed = subprocess.run([sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=600,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return completed.returncode, json.loads(completed.stdout), completed.stderr


def test_without_a_gpu_it_says_so_and_exits_cleanly() -> None:
    code, result, stderr = _run()
    assert code == 0 and result == {"benchmark": "train_gpu", "skipped": "no GPU"}
    assert "no GPU visible" in stderr


def test_cpu_path_times_the_real_train_step() -> None:
    # Without --jit-compile: XLA-compiling ResNet-50 adds ~30 s; test_precision covers the XLA train step.
    code, result, _ = _run("--allow-cpu", "--backbones", "small-cnn,resnet50", "--steps", "2", "--warmup-steps", "1",
                           "--batch-size", "2", "--image-size", "32", "--precision", "mixed_bfloat16")
    assert code == 0
    assert (result["device"], result["precision"], result["jit_compile"]) == ("CPU", "mixed_bfloat16", False)
    small, resnet = result["backbones"]["small-cnn"], result["backbones"]["resnet50"]
    assert small["images_per_second_per_gpu"] > 0 and small["ratio_to_reference"] is None
    assert small["warmup_seconds"] > 0 and "warmup_seconds_keras_build" not in small
    assert resnet["reference_images_per_second"] == 2375.0
    assert resnet["ratio_to_reference"] == round(resnet["images_per_second_per_gpu"] / 2375.0, 3)
