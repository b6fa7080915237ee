"""``ecom-kfp predict``: batch prediction from a shell."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import add_stage_verb, bad_input, reject_lines
from ecom_kfp.predict.config import PredictConfig
from ecom_kfp.report import to_jsonable
from ecom_kfp.settings import ConfigError, from_args

HELP = "score a products table with a trained, pushed or registered model"
DESCRIPTION = """Score every product of an ingest output with a model, in batches, streaming.

The model is called through its serving signature (as evaluate and the MLflow pyfunc call it), its
probabilities calibrated and thresholded with the model's thresholds.json (evaluate writes it;
--target-precision picks another point of its precision curve). Writes predictions.parquet (per
level top-k classes and probabilities, predicted path, confidence, accepted, and agreement with the
catalog's category with suspect_label for confident disagreements), rejects.parquet (products that
cannot be scored, with reasons), predictions.html and report.json to --out."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` verb; its flags come from :class:`PredictConfig`."""
    add_stage_verb(subparsers, "predict", HELP, DESCRIPTION, PredictConfig, main)


def summary_lines(report: dict) -> list[str]:
    """The human summary of a predict ``report.json`` (also printed by ``run-local``)."""
    lines = [f"predict: {report['scored']} of {report['input']} products scored with {report['model']} "
             f"({report['products_per_second']:,.1f} products/s)",
             f"  accepted {report['accepted']} ({report['share_accepted']:.1%}) at thresholds "
             f"{', '.join(f'{t:.3f}' for t in report['thresholds'])} ({report['thresholds_source']})",
             f"  catalog category: {report['with_catalog_category']} products, agreement "
             f"{report['agreement_rate']:.1%}, suspect labels {report['suspect']} ({report['share_suspect']:.1%} "
             "of scored)"]
    lines += [f"  drift {name}: total variation {d['total_variation']:.3f}, PSI {d['psi']:.3f} vs {d['trained']} "
              "training records" for name, d in report["drift"].items()]
    lines += reject_lines(report["rejects_by_reason"])
    return lines


def main(args: argparse.Namespace) -> int:
    """Run the stage and print a human summary."""
    from ecom_kfp.predict.stage import run

    config = from_args(PredictConfig, args)
    try:
        report = run(config)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        return bad_input("predict", err)
    print("\n".join(summary_lines(to_jsonable(report))))
    print(f"  outputs: {config.out_uri} (predictions.html to judge by eye)")
    return 0
