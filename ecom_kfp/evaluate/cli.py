"""``ecom-kfp evaluate``: score a model, write plots and the blessing decision."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import bad_input
from ecom_kfp.evaluate.config import EvaluateConfig, GateConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` verb."""
    p = subparsers.add_parser("evaluate", help="score a model, write plots and the blessing decision",
                              description="Score a model on a dataset's test split through its serving signature, "
                                          "compare with a baseline and decide whether it is blessed.")
    p.add_argument("--model", required=True, help="model directory URI (a train output: saved_model/, labels/)")
    p.add_argument("--data", required=True, help="dataset directory URI (a tfrecord-build output); test/ is scored")
    p.add_argument("--out", required=True, help="output directory URI (metrics.json, blessing.json, report.html, ...)")
    p.add_argument("--business-value", default="", metavar="URI",
                   help="category_path,business_value table (CSV, JSON or Parquet; the one ingest read) "
                        "(default: the records' business_value, else category frequency)")
    p.add_argument("--baseline", default="",
                   help="model directory URI, models:/NAME@ALIAS, models:/NAME/VERSION or a registered model name "
                        "(default: the registry champion when --mlflow-tracking-uri is set)")
    p.add_argument("--mlflow-tracking-uri", default="", help="MLflow tracking/registry server with the champion")
    p.add_argument("--registered-model-name", default="ecom-product-category",
                   help="registered model whose champion is the default baseline")
    p.add_argument("--champion-alias", default="champion", help="registry alias of the default baseline")
    p.add_argument("--confidence-threshold", type=float, default=0.5,
                   help="softmax threshold for accepted-prediction precision and coverage")
    p.add_argument("--target-precision", type=float, default=0.95,
                   help="precision for which the coverage curve reports a threshold")
    p.add_argument("--top-k", type=int, default=5, help="k of top-k accuracy")
    p.add_argument("--confusion-top-n", type=int, default=50,
                   help="classes (by business value) with their own row in the confusion matrices")
    p.add_argument("--confusion-level", type=int, default=0,
                   help="level shown as the Kubeflow confusion matrix (0 = deepest)")
    p.add_argument("--slice-table", default="", metavar="URI",
                   help="products table (Parquet/CSV with product_id) supplying --slice-columns")
    p.add_argument("--slice-columns", default="", help="comma-separated columns to slice by, e.g. gender,brand")
    p.add_argument("--slice-floor", type=float, default=0.5, help="accuracy under which a slice is flagged")
    p.add_argument("--slice-min-examples", type=int, default=10, help="slices smaller than this are never flagged")
    p.add_argument("--batch-size", type=int, default=64, help="inference batch size")
    p.add_argument("--min-accuracy", type=float, default=0.0, help="gate: absolute floor on accuracy at every level")
    p.add_argument("--min-weighted-score", type=float, default=0.0,
                   help="gate: absolute floor on the business-value-weighted score at every level")
    p.add_argument("--max-regression", type=float, default=0.005,
                   help="gate: largest allowed drop vs the baseline (fraction; 0.005 = 0.5 points)")
    p.set_defaults(func=main)


def config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    """The stage config the flags describe."""
    return EvaluateConfig(
        model_uri=args.model, data_uri=args.data, out_uri=args.out, business_value_uri=args.business_value,
        baseline=args.baseline, mlflow_tracking_uri=args.mlflow_tracking_uri,
        registered_model_name=args.registered_model_name, champion_alias=args.champion_alias,
        confidence_threshold=args.confidence_threshold, target_precision=args.target_precision,
        top_k=args.top_k, confusion_top_n=args.confusion_top_n, confusion_level=args.confusion_level,
        slice_table_uri=args.slice_table,
        slice_columns=tuple(c.strip() for c in args.slice_columns.split(",") if c.strip()),
        slice_floor=args.slice_floor, slice_min_examples=args.slice_min_examples, batch_size=args.batch_size,
        gate=GateConfig(args.min_accuracy, args.min_weighted_score, args.max_regression))


def main(args: argparse.Namespace) -> int:
    """Run the stage and print a human summary; exit 2 on bad input."""
    from ecom_kfp.evaluate.stage import run

    try:
        report = run(config_from_args(args))
    except (FileNotFoundError, ValueError) as err:
        return bad_input("evaluate", err)
    print(f"evaluated {report.model_uri} on {report.examples} test examples "
          f"({report.examples_per_second:.0f} examples/s)")
    for level, values in report.levels.items():
        print(f"  level {level}: accuracy {values['accuracy']:.4f}  weighted score {values['weighted_score']:.4f}  "
              f"top-k {values['top_k_accuracy']:.4f}  macro F1 {values['macro_f1']:.4f}")
    print(f"  business value from: {report.business_value_source}; flagged slices: {report.flagged_slices}")
    print(f"  baseline: {report.baseline or 'none (absolute thresholds only)'}")
    print(f"  {'BLESSED' if report.blessed else 'NOT BLESSED'}; details in {report.out_uri}")
    # Not blessed is a result, not a failure (docs/design.md CLI contract): exit 0 either way.
    return 0
