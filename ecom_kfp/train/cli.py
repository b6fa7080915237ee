"""``ecom-kfp train``: train the classifier on a tfrecord-build output.

``--np N`` re-launches the run as ``horovodrun --gloo -np N -H localhost:N python -m
ecom_kfp.train.worker CONFIG`` (N CPU processes or N GPUs in one machine or pod); every rank
reads its own shards, rank 0 writes ``--out`` and logs to MLflow.
"""

from __future__ import annotations

import argparse
import sys

from ecom_kfp.train.config import BACKBONE_NAMES, INPUT_MODES, ConfigError, TrainConfig, parse_level_weights

DEFAULTS = TrainConfig(data="-", out="-")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` verb."""
    p = subparsers.add_parser("train", help="train the classifier with Horovod (horovodrun --np N)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="URI of a tfrecord-build output (local path or gs://)")
    p.add_argument("--out", required=True, help="URI to write the model to (saved_model/, model.keras, report.json ...)")
    p.add_argument("--np", dest="num_processes", type=int, default=DEFAULTS.num_processes,
                   help="Horovod processes; > 1 runs horovodrun --gloo -np N -H localhost:N (default %(default)s)")
    p.add_argument("--backbone", choices=BACKBONE_NAMES, default=DEFAULTS.backbone, help="image backbone (default %(default)s)")
    p.add_argument("--inputs", choices=INPUT_MODES, default=DEFAULTS.inputs,
                   help="feed the heads from image and title (fused), image only or title only (default %(default)s)")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help="passes over the training split (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="examples per step per process (default %(default)s)")
    p.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate,
                   help="base rate for one process, scaled by --np after warm-up (default %(default)s)")
    p.add_argument("--warmup-epochs", type=float, default=DEFAULTS.warmup_epochs, help="linear warm-up epochs (default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay, help="AdamW weight decay (default %(default)s)")
    p.add_argument("--ema-momentum", type=float, default=DEFAULTS.ema_momentum,
                   help="momentum of the exported moving average of the weights, 0 = off (default %(default)s)")
    p.add_argument("--label-smoothing", type=float, default=DEFAULTS.label_smoothing,
                   help="share of each target spread over all classes (default %(default)s)")
    p.add_argument("--logit-adjustment", type=float, default=DEFAULTS.logit_adjustment,
                   help="strength of the training loss's logit adjustment for rare classes, 0 = off (default %(default)s)")
    p.add_argument("--image-size", type=int, default=DEFAULTS.image_size,
                   help="model input side in pixels; 0 = the dataset's stored size from its manifest (default)")
    p.add_argument("--level-weights", default="", help="comma-separated loss weight per level, level 1 first (default all 1)")
    p.add_argument("--business-value-weights", action="store_true", help="weight each example's loss by its business value")
    p.add_argument("--max-title-tokens", type=int, default=DEFAULTS.max_title_tokens, help="title pieces kept (default %(default)s)")
    p.add_argument("--title-word-buckets", type=int, default=DEFAULTS.title_word_buckets,
                   help="hash buckets of the word + word-bigram title embedding, 0 = off (default %(default)s)")
    p.add_argument("--embedding-dim", type=int, default=DEFAULTS.embedding_dim,
                   help="piece embedding size when Doc2Vec has no piece vectors (default %(default)s)")
    p.add_argument("--hidden-units", type=int, default=DEFAULTS.hidden_units, help="fused dense width (default %(default)s)")
    p.add_argument("--dropout", type=float, default=DEFAULTS.dropout, help="dropout before the heads (default %(default)s)")
    p.add_argument("--title-dropout", type=float, default=DEFAULTS.title_dropout,
                   help="fused models only: share of training examples whose title the model does not see, so "
                        "the image branch keeps learning after the titles are fitted (default %(default)s)")
    p.add_argument("--image-head-weight", type=float, default=DEFAULTS.image_head_weight,
                   help="fused models only: loss weight of auxiliary image-only heads that keep the image branch "
                        "learning after the titles are fitted; training only, not served; 0 = off (default %(default)s)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="turn off keras-cv flips and shifts")
    p.add_argument("--fit-on-val", action="store_true",
                   help="train on the train and validation splits together, for the final model once the settings "
                        "were chosen on validation; no validation metrics are then computed (the test split stays "
                        "unseen)")
    p.add_argument("--weights", default="", help="URI of backbone weights (.weights.h5) to fine-tune from; "
                   "'python -m ecom_kfp.train.pretrained OUT' writes efficientnet-lite0's ImageNet weights")
    p.add_argument("--freeze-backbone-epochs", type=int, default=0, help="epochs to keep the backbone frozen first (default 0)")
    p.add_argument("--fp16-allreduce", action="store_true", help="compress gradients to float16 for the allreduce")
    p.add_argument("--mlflow-tracking-uri", default="",
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite mlflow.db under --out)")
    p.add_argument("--experiment-name", default=DEFAULTS.experiment_name, help="MLflow experiment (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed (default %(default)s)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="ignore a checkpoint left under --out")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the stage from parsed flags and print a summary."""
    from ecom_kfp.train.data import DatasetError

    try:
        config = TrainConfig(
            data=args.data, out=args.out, backbone=args.backbone, inputs=args.inputs, epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=args.learning_rate, warmup_epochs=args.warmup_epochs,
            weight_decay=args.weight_decay, ema_momentum=args.ema_momentum,
            label_smoothing=args.label_smoothing, logit_adjustment=args.logit_adjustment, image_size=args.image_size,
            level_weights=parse_level_weights(args.level_weights), business_value_weights=args.business_value_weights,
            max_title_tokens=args.max_title_tokens, title_word_buckets=args.title_word_buckets,
            embedding_dim=args.embedding_dim, hidden_units=args.hidden_units,
            dropout=args.dropout, title_dropout=args.title_dropout,
            image_head_weight=args.image_head_weight, augment=args.augment, fit_on_val=args.fit_on_val,
            weights=args.weights, freeze_backbone_epochs=args.freeze_backbone_epochs, num_processes=args.num_processes,
            fp16_allreduce=args.fp16_allreduce, mlflow_tracking_uri=args.mlflow_tracking_uri,
            experiment_name=args.experiment_name, seed=args.seed, resume=args.resume)
        from ecom_kfp.train.stage import run

        report = run(config)
    except (ConfigError, DatasetError, RuntimeError) as err:
        print(f"ecom-kfp train: {err}", file=sys.stderr)
        return 2
    print(summary(report))
    return 0


def summary(report) -> str:
    """Human summary of a :class:`~ecom_kfp.train.stage.TrainReport`."""
    levels = len(report.num_classes)
    test = ", ".join(f"L{k} {report.test_metrics.get(f'level_{k}_accuracy', float('nan')):.3f}" for k in range(1, levels + 1))
    return (f"trained {report.backbone} ({report.inputs}) on {report.counts.get('train', 0)} products, "
            f"{report.epochs_trained} epochs x {report.num_processes} process(es), "
            f"{report.examples_per_second:.0f} examples/s; test top-1: {test}\n"
            f"model: {report.out}  MLflow run {report.mlflow_run_id} at {report.mlflow_tracking_uri}")
