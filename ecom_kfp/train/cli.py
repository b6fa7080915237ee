"""``ecom-kfp train``: the training stage from a shell; its flags come from :class:`TrainConfig`."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import add_stage_verb, bad_input
from ecom_kfp.settings import ConfigError, from_args
from ecom_kfp.train.config import TrainConfig
from ecom_kfp.train.report import TrainReport

DESCRIPTION = """Train the image + title classifier on a tfrecord-build output, one softmax head per taxonomy level.

--preset cpu-small (the default: small-cnn at 64 px, the measured best on 2 CPU cores) or --preset gpu
(efficientnetv2-b0 at 224 px, batch and learning rate per GPU) fills --backbone, --image-size, --epochs,
--batch-size and --learning-rate unless given. --np N runs N Horovod processes (horovodrun --gloo -np N
-H localhost:N python -m ecom_kfp.train.worker CONFIG: N CPU processes or N GPUs in one machine or pod);
every rank reads its own shards, rank 0 writes --out and logs to MLflow. --launcher mpijob runs the ranks
as an MPI Operator MPIJob across pods."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` verb."""
    add_stage_verb(subparsers, "train", "train the classifier with Horovod (horovodrun --np N)",
                   DESCRIPTION, TrainConfig, main)


def main(args: argparse.Namespace) -> int:
    """Run the stage from parsed flags and print a summary."""
    from ecom_kfp.train.data import DatasetError
    from ecom_kfp.train.stage import run

    try:
        report = run(from_args(TrainConfig, args))
    except (ConfigError, DatasetError, RuntimeError) as err:
        return bad_input("train", err)
    print(summary(report))
    return 0


def summary(report: TrainReport) -> str:
    """Human summary of a :class:`TrainReport`."""
    levels = len(report.num_classes)
    test = ", ".join(f"L{k} {report.test_metrics.get(f'level_{k}_accuracy', float('nan')):.3f}"
                     for k in range(1, levels + 1))
    return (f"trained {report.backbone} ({report.inputs}, preset {report.preset}, {report.precision}) on "
            f"{report.counts.get('train', 0)} products, {report.epochs_trained} epochs x {report.num_processes} "
            f"process(es), {report.examples_per_second:.0f} examples/s; test top-1: {test}\n"
            f"model: {report.out}  MLflow run {report.mlflow_run_id} at {report.mlflow_tracking_uri}")
