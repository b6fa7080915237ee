"""Horovod scaling: the same training run with 1 and 2 processes (horovodrun --gloo) on this machine.

Prints JSON: examples/s of each run (steady epochs), speed-up and scaling efficiency
(examples/s with N processes / (N x examples/s with 1)); Horovod's published anchor is ~90% for
ResNet-class models on GPUs. On 2 shared CPU cores both runs compete for the same cores, so the
efficiency measures Horovod's overhead, not added hardware.

Usage: ``python benchmarks/bench_train_scaling.py [--backbone small-cnn]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from _common import stdout_to_stderr
from train_data import myntra_dataset  # benchmarks/ is on sys.path when run as a script

from ecom_kfp.train.config import TrainConfig
from ecom_kfp.train.stage import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ecom-kfp-bench"), help="cache directory")
    parser.add_argument("--backbone", default="small-cnn", help="image backbone")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not timed)")
    parser.add_argument("--batch-size", type=int, default=32, help="per-process batch")
    parser.add_argument("--image-size", type=int, default=64, help="stored and model image size")
    args = parser.parse_args()
    work = Path(args.work)
    data = myntra_dataset(work, args.image_size)
    results = {}
    for processes in (1, 2):
        out = work / f"scaling-np{processes}"
        shutil.rmtree(out, ignore_errors=True)
        with stdout_to_stderr():  # Keras' epoch lines and horovodrun's; stdout is the JSON document
            report = run(TrainConfig(data=data.root, out=str(out), backbone=args.backbone, epochs=args.epochs,
                                     batch_size=args.batch_size, num_processes=processes, resume=False))
        results[processes] = {"examples_per_second": report.examples_per_second,
                               "per_rank": [r["examples_per_second"] for r in report.per_rank],
                               "fit_seconds": report.timings["fit"], "final_loss": report.final_metrics.get("loss")}
    one, two = results[1]["examples_per_second"], results[2]["examples_per_second"]
    print(json.dumps({"benchmark": "train_scaling", "backbone": args.backbone, "batch_size_per_process": args.batch_size,
                      "image_size": args.image_size, "np1": results[1], "np2": results[2],
                      "speedup": two / one, "scaling_efficiency": two / (2 * one),
                      "horovod_published_anchor_efficiency": 0.90}, indent=2))


if __name__ == "__main__":
    main()
