"""Evaluate's memory against test examples and classes: what a pod needs at catalog scale.

The evaluate stage keeps the full softmax of every level of the test split (``n x C`` float32 per
level, :mod:`ecom_kfp.evaluate.inference`): temperature scaling and cleanlab's label-error search
need it. That float32 matrix is the floor any evaluation holding the softmax needs. This benchmark
measures, on synthetic softmax outputs of one level (``n`` examples, ``C`` classes, the true class
ahead in most rows), the peak of Python-heap memory (``tracemalloc``, which sees NumPy's arrays)
of each step the stage runs on such a level, with the stage's own functions and in its order:

- ``fit_temperature``: the validation sample the stage fits on (at most ``CALIBRATION_EXAMPLES``);
- ``fit_temperature_cross_checked``: the whole test split (models trained with ``--fit-on-val``);
- ``LevelPredictions.from_probabilities`` and ``level_metrics``: accuracy, top-k, the coverage curve;
- ``calibrate_level``: ECE and NLL before and after;
- ``temperature_scale`` + ``find_suspects``: cleanlab's confident learning on calibrated scores.

It prints, per ``(n, C)``, each step's peak in MB and in bytes per example-class, the float32
matrix's size, and the ratio of the largest peak to it. Peaks are transient (one step at a time,
one level at a time); the stage also holds every level's float32 matrix throughout.

Usage: ``python benchmarks/bench_evaluate_memory.py [--examples 5000,20000] [--classes 140,1000]``
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from collections.abc import Callable

import numpy as np


def synthetic_softmax(examples: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 softmax rows whose recorded class leads in most rows, and those class ids."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, examples)
    logits = rng.standard_normal((examples, classes), dtype=np.float32) * 2
    logits[np.arange(examples), labels] += 4
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits, labels


def peak(step: Callable[[], object]) -> tuple[int, float]:
    """Peak traced bytes while ``step`` runs, and its seconds."""
    tracemalloc.start()
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top, seconds


def measure(examples: int, classes: int) -> dict:
    """Each step's peak on one level of ``examples`` x ``classes``."""
    from ecom_kfp.evaluate.calibration import (
        calibrate_level,
        fit_temperature,
        fit_temperature_cross_checked,
        temperature_scale,
    )
    from ecom_kfp.evaluate.metrics import LevelPredictions, level_metrics
    from ecom_kfp.evaluate.stage import CALIBRATION_EXAMPLES
    from ecom_kfp.evaluate.suspects import find_suspects

    probabilities, labels = synthetic_softmax(examples, classes)
    sample = min(examples, CALIBRATION_EXAMPLES)
    temperature = fit_temperature(probabilities[:sample], labels[:sample])
    level = LevelPredictions.from_probabilities(3, probabilities, labels, 5, temperature)
    steps = {
        "fit_temperature": lambda: fit_temperature(probabilities[:sample], labels[:sample]),
        "fit_temperature_cross_checked": lambda: fit_temperature_cross_checked(probabilities, labels),
        "from_probabilities": lambda: LevelPredictions.from_probabilities(3, probabilities, labels, 5, temperature),
        "level_metrics": lambda: level_metrics(level, np.ones(examples), 0.5, 0.95),
        "calibrate_level": lambda: calibrate_level(3, temperature, sample, "val", probabilities, labels,
                                                   level.correct),
        "temperature_scale+find_suspects": lambda: find_suspects(
            temperature_scale(probabilities, temperature, dtype=np.float32), labels),
    }
    cells = examples * classes
    result: dict = {"examples": examples, "classes": classes, "float32_scores_mb": round(probabilities.nbytes / 1e6, 1),
                    "steps": {}}
    largest = 0
    for name, step in steps.items():
        top, seconds = peak(step)
        largest = max(largest, top)
        result["steps"][name] = {"peak_mb": round(top / 1e6, 1), "bytes_per_example_class": round(top / cells, 1),
                                 "seconds": round(seconds, 2)}
    result["largest_peak_mb"] = round(largest / 1e6, 1)
    result["largest_peak_over_float32_scores"] = round(largest / probabilities.nbytes, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", default="5000,20000", help="comma-separated test split sizes")
    parser.add_argument("--classes", default="140,1000", help="comma-separated class counts of the level")
    args = parser.parse_args()
    runs = [measure(int(n), int(c)) for n in args.examples.split(",") for c in args.classes.split(",")]
    print(json.dumps({"benchmark": "evaluate_memory", "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
