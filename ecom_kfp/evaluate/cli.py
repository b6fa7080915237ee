"""``ecom-kfp evaluate``: score a model, write plots, thresholds and the blessing decision."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import bad_input
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.settings import add_arguments, from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` verb; its flags come from :class:`EvaluateConfig`."""
    parser = subparsers.add_parser(
        "evaluate", help="score a model, write plots, thresholds and the blessing decision",
        description="Score a model on a dataset's test split through its serving signature (temperatures fitted "
                    "on the validation split), choose the per-level thresholds for a target precision, find "
                    "suspect labels, compare with a baseline and decide whether it is blessed.")
    add_arguments(parser, EvaluateConfig)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the stage and print a human summary; exit 2 on bad input."""
    from ecom_kfp.evaluate.stage import run

    try:
        report = run(from_args(EvaluateConfig, args))
    except (FileNotFoundError, ValueError) as err:
        return bad_input("evaluate", err)
    total = f" of {report.test_records}" if report.test_records is not None else ""
    of = f"{total} (--max-test-examples)" if report.sampled else ""
    print(f"evaluated {report.model_uri} on {report.examples}{of} test examples "
          f"({report.examples_per_second:.0f} examples/s)")
    for level, values in report.levels.items():
        calibration, threshold = report.calibration[level], report.thresholds[level]
        print(f"  level {level}: accuracy {values['accuracy']:.4f}  weighted score {values['weighted_score']:.4f}  "
              f"top-k {values['top_k_accuracy']:.4f}  macro F1 {values['macro_f1']:.4f}")
        print(f"    temperature {calibration['temperature']:.3f}: ECE {calibration['ece_before']:.4f} -> "
              f"{calibration['ece_after']:.4f}; threshold {threshold['threshold']:.4f} (precision "
              f"{threshold['precision']:.4f}, coverage {threshold['coverage']:.4f})")
        if level in report.tail:
            tail = report.tail[level]
            accuracy = "n/a" if tail["accuracy"] is None else f"{tail['accuracy']:.4f}"
            print(f"    tail: {tail['examples']} examples, accuracy {accuracy}, {tail['folded_examples']} folded")
        if level in report.suspect_labels:
            suspects = report.suspect_labels[level]
            without = suspects["accuracy_without_suspects"]
            print(f"    suspect labels: {suspects['count']} (accuracy with them set aside: "
                  f"{'n/a' if without is None else f'{without:.4f}'})")
    print(f"  business value from: {report.business_value_source}; flagged slices: {report.flagged_slices}")
    print(f"  baseline: {report.baseline or 'none (absolute thresholds only)'}")
    print(f"  {'BLESSED' if report.blessed else 'NOT BLESSED'}; details in {report.out_uri}")
    # Not blessed is a result, not a failure (docs/design.md CLI contract): exit 0 either way.
    return 0
