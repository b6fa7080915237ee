"""Quality on myntra-dev: per-level test top-1 of image-only, title-only and fused models vs the
baseline a user would otherwise build (TF-IDF word + character n-grams on titles with logistic
regression, scikit-learn), on the same splits, with each one's wall time. Validation top-1 is
printed too (unless ``--fit-on-val`` trains on it): choose settings there, not on test.

Goal (issue 7): the fused model, trained on this 2-core machine in under 30 minutes, beats the
baseline at every level with level 2 >= 0.985 and level 3 >= 0.955.

Usage: ``python benchmarks/bench_train_quality.py [--backbone small-cnn] [--epochs 18]
[--models fused,title,image] [--fit-on-val]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from _common import stdout_to_stderr
from train_data import myntra_dataset  # benchmarks/ is on sys.path when run as a script

GOALS = {"level_2": 0.985, "level_3": 0.955}
#: Settings measured best for small-cnn at 64 px on 2 cores (about 20-25 s per epoch): with 1e-3
#: and 8 epochs the model still underfit (train level-3 accuracy 0.956); 3e-3 fits the training
#: titles within about 10 epochs, after which validation accuracy was flat at ~0.942 (test level 3
#: 0.936). Regularising that overfit helped: weight decay 0.05 + weight EMA 0.99 + label smoothing
#: 0.1 + level-3 loss weight 3 lifted validation level 3 to ~0.953; hashed word + word-bigram title
#: embeddings on top gave test 0.9868 / 0.9519 (levels 2 / 3), and dropout 0.3 instead of 0.1
#: 0.9904 / 0.9531 in one run and 0.9892 / 0.9495 in a repeat (training order is not
#: deterministic, so level 3 varies by about +-0.004 between runs).
EPOCHS = 18
LEARNING_RATE = 3e-3
DROPOUT = 0.3
TITLE_DROPOUT = 0.0
IMAGE_HEAD_WEIGHT = 0.0
WEIGHT_DECAY = 0.05
EMA_MOMENTUM = 0.99
LABEL_SMOOTHING = 0.1
LEVEL_WEIGHTS = "1,1,3"
TITLE_WORD_BUCKETS = 32768
#: Character 2-4-gram buckets: bench_cv.py measured +0.10 +- 0.24 points of level 3 and +2.5 points on
#: the rare-class tail (5 folds paired, mean of two seeds), at about twice the title model's training
#: time (benchmarks/README.md).
TITLE_CHAR_BUCKETS = 65536


def read_split(data, split: str) -> tuple[list[str], list[list[int]]]:
    """Titles and per-level labels of one split, straight from the shards."""
    import tensorflow as tf

    titles, labels = [], []
    for record in tf.data.TFRecordDataset(data.shards(split), compression_type="GZIP").batch(512):
        parsed = data.spec.parse(record)
        titles += [t.decode("utf-8") for t in parsed["title"].numpy()]
        labels += list(zip(*(parsed[k].numpy().tolist() for k in data.spec.label_keys), strict=True))
    return titles, labels


def per_level_accuracy(metrics: dict[str, float], prefix: str, levels: int) -> dict[str, float]:
    """``{"level_k": metrics["<prefix>level_k_accuracy"]}`` for each level, from a training report."""
    return {f"level_{k}": metrics[f"{prefix}level_{k}_accuracy"] for k in range(1, levels + 1)}


def tfidf_baseline(data, fit_splits: tuple[str, ...]) -> dict:
    """Per-level top-1 of TF-IDF + logistic regression on test, and on validation when it was
    not trained on (settings are chosen there: test alone swings by several products per run)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    start = time.perf_counter()
    train_titles, train_labels = [], []
    for split in fit_splits:
        titles, labels = read_split(data, split)
        train_titles += titles
        train_labels += labels
    scored = {name: read_split(data, name) for name in ("val", "test") if name not in fit_splits}
    accuracy = {name: {} for name in scored}
    for level in range(1, data.spec.num_levels + 1):
        features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                              TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
        model = make_pipeline(features, LogisticRegression(C=20.0, max_iter=2000))
        model.fit(train_titles, [y[level - 1] for y in train_labels])
        for name, (titles, labels) in scored.items():
            predicted = model.predict(titles)
            right = sum(int(p == y[level - 1]) for p, y in zip(predicted, labels, strict=True))
            accuracy[name][f"level_{level}"] = right / len(labels)
    return {"test_accuracy": accuracy["test"], **({"validation_accuracy": accuracy["val"]} if "val" in accuracy else {}),
            "wall_seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ecom-kfp-bench"), help="cache directory")
    parser.add_argument("--backbone", default="small-cnn", help="image backbone")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs per model")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--image-size", type=int, default=64, help="stored and model image size")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="base learning rate")
    parser.add_argument("--dropout", type=float, default=DROPOUT, help="dropout before the heads")
    parser.add_argument("--title-dropout", type=float, default=TITLE_DROPOUT,
                        help="share of examples a fused model sees without title")
    parser.add_argument("--image-head-weight", type=float, default=IMAGE_HEAD_WEIGHT,
                        help="loss weight of a fused model's auxiliary image-only heads, 0 = off")
    parser.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY, help="AdamW weight decay")
    parser.add_argument("--ema-momentum", type=float, default=EMA_MOMENTUM, help="weight EMA momentum, 0 = off")
    parser.add_argument("--label-smoothing", type=float, default=LABEL_SMOOTHING, help="label smoothing")
    parser.add_argument("--level-weights", default=LEVEL_WEIGHTS, help="loss weight per level, level 1 first")
    parser.add_argument("--title-word-buckets", type=int, default=TITLE_WORD_BUCKETS, help="word-hash buckets, 0 = off")
    parser.add_argument("--title-char-buckets", type=int, default=TITLE_CHAR_BUCKETS,
                        help="character n-gram hash buckets, 0 = off")
    parser.add_argument("--models", default="fused,title,image", help="which input modes to train")
    parser.add_argument("--weights", default="", help="backbone weights to start from (.weights.h5)")
    parser.add_argument("--freeze-backbone-epochs", type=int, default=0, help="epochs the backbone stays frozen")
    parser.add_argument("--fit-on-val", action="store_true",
                        help="train every model and the baseline on the train and validation splits together")
    args = parser.parse_args()

    from ecom_kfp.train.config import TrainConfig, parse_level_weights, training_splits
    from ecom_kfp.train.data import TrainingData
    from ecom_kfp.train.stage import run

    work = Path(args.work)
    data = TrainingData.load(myntra_dataset(work, args.image_size).root)
    results = {"benchmark": "train_quality", "backbone": args.backbone, "epochs": args.epochs,
               "learning_rate": args.learning_rate, "dropout": args.dropout, "title_dropout": args.title_dropout,
               "image_head_weight": args.image_head_weight,
               "weight_decay": args.weight_decay, "ema_momentum": args.ema_momentum,
               "label_smoothing": args.label_smoothing, "level_weights": args.level_weights,
               "title_word_buckets": args.title_word_buckets, "title_char_buckets": args.title_char_buckets,
               "counts": data.counts,
               "fit_on_val": args.fit_on_val, "num_classes": data.num_classes, "weights": args.weights,
               "freeze_backbone_epochs": args.freeze_backbone_epochs,
               "baseline_tfidf_logreg": tfidf_baseline(data, training_splits(args.fit_on_val))}
    for mode in args.models.split(","):
        out = work / f"quality-{mode}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        with stdout_to_stderr():  # Keras' epoch lines; stdout is the JSON document
            report = run(TrainConfig(data=data.layout.root, out=str(out), backbone=args.backbone, inputs=mode,
                                     epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                     dropout=args.dropout, title_dropout=args.title_dropout if mode == "fused" else 0.0,
                                     image_head_weight=args.image_head_weight if mode == "fused" else 0.0,
                                     weight_decay=args.weight_decay, title_word_buckets=args.title_word_buckets,
                                     title_char_buckets=args.title_char_buckets if mode != "image" else 0,
                                     ema_momentum=args.ema_momentum, label_smoothing=args.label_smoothing,
                                     level_weights=parse_level_weights(args.level_weights), fit_on_val=args.fit_on_val,
                                     weights=args.weights if mode != "title" else "",
                                     freeze_backbone_epochs=args.freeze_backbone_epochs,
                                     resume=False))
        levels = data.spec.num_levels
        results[mode] = {"test_accuracy": per_level_accuracy(report.test_metrics, "", levels),
                         "wall_seconds": time.perf_counter() - start}
        if "val_level_1_accuracy" in report.final_metrics:  # the last epoch's, where settings are chosen
            results[mode]["validation_accuracy"] = per_level_accuracy(report.final_metrics, "val_", levels)
        if "image_level_1_accuracy" in report.test_metrics:  # what the fused model's image branch knows alone
            results[mode]["image_heads_test_accuracy"] = per_level_accuracy(report.test_metrics, "image_", levels)
    baseline = results["baseline_tfidf_logreg"]["test_accuracy"]
    if "fused" in results:
        fused = results["fused"]["test_accuracy"]
        results["fused_minus_baseline"] = {k: fused[k] - baseline[k] for k in baseline}
        results["fused_meets_goals"] = all(fused[k] >= v for k, v in GOALS.items()) and all(
            fused[k] > baseline[k] for k in baseline) and results["fused"]["wall_seconds"] < 1800
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
