"""Cross-validated quality on all of myntra-dev (issue 21): k-fold accuracy per level, mean and
spread, of the fused, title-only and image-only models and of the TF-IDF + logistic regression
title baseline, on identical folds.

Folds are cut by duplicate group (exact image duplicates by default, or the groups of a dedupe
output given with ``--products``) by the TFRecord build itself (``cv_folds``/``cv_fold``), and each
fold's dataset and models come from the real stages: ``tfrecord_build.run`` then ``train.run``,
then the exported serving signature predicts the fold's test split. Accuracy compares class
*names*: a product whose class the build folded into ``other`` (or never saw in training) is an
error unless the model names its class, for our models and the baseline alike.

Besides accuracy the JSON holds, per fold and aggregated: the tail slice (level-3 classes with
fewer than 5 training products in the fold), where the image changes the title's answer (fused
vs title-only, and a late fusion of the title-only and image-only models whose image weight is
chosen on the other folds), and expected calibration error per level before and after
temperature scaling (evaluate's functions, the temperature fitted on the other folds' predictions,
so judged on products it was not fitted on without evaluate's cross-check). With the title model
and the baseline, it also holds the mean of their probabilities (``title+baseline``), for information.

Everything is cached under ``--work`` (a dataset per fold, a model and its test predictions per
fold and setting), so models trained by separate runs (``--models title`` now, ``--models fused``
later) are aggregated by a later run with ``--models title,fused,...``.

Usage: ``python benchmarks/bench_cv.py [--folds 5] [--only-folds 0,1] [--epochs 18]
[--image-epochs 8] [--models fused,title,image,baseline] [--min-class-count 1] [--logit-adjustment 0]
[--title-char-buckets 0] [--level-weights 1,1,3] [--seed 0] [--deterministic]``

Frozen ImageNet Lite0 features inside the trained models (``train --frozen-backbone``, issue 21):
``--models image,fused --frozen-backbone --backbone efficientnet-lite0 --weights imagenet
--image-size 224`` (``train --weights imagenet``; the figures in benchmarks/README.md were trained
from the same weights written to a file by ``python -m ecom_kfp.train.pretrained lite0.weights.h5``,
which gives bit-identical models but another cache key).
Frozen models take images at ``--image-size``, the size the folds are built at: 224 builds fold
datasets of their own (the 60x80 pictures padded to 224 px JPEGs, as the probe pads them); with
the 64 px folds the decoder would upsample their 64 px images instead, losing the detail the
64 px build dropped. Add ``--fusion late`` to train the fused model as one late-fusion model
(``train --fusion late``: heads per branch, served logits added with ``--late-fusion-weight``); its
own branches are then scored alone too (``fused-title-branch``, ``fused-image-branch``), and
``fused_vs_its_title_branch`` says what the image changes inside that one model. Without
``--frozen-backbone`` the backbone is fine-tuned from ``--weights`` (``--freeze-backbone-epochs``
first trains the layers after it).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from _common import MYNTRA, myntra_products, stdout_to_stderr, write_deduped_products
from bench_train_quality import (
    DROPOUT,
    EMA_MOMENTUM,
    EPOCHS,
    LABEL_SMOOTHING,
    LEARNING_RATE,
    LEVEL_WEIGHTS,
    TITLE_CHAR_BUCKETS,
    TITLE_WORD_BUCKETS,
    WEIGHT_DECAY,
)

from ecom_kfp import uri
from ecom_kfp.contracts import features, serving
from ecom_kfp.contracts.labels import class_name
from ecom_kfp.contracts.layouts import DedupeLayout, ModelLayout
from ecom_kfp.evaluate.calibration import expected_calibration_error, fit_pooled_temperature, temperature_scale
from ecom_kfp.settings import comma_separated
from ecom_kfp.train.config import TrainConfig, parse_level_weights
from ecom_kfp.train.tracking import resolve_tracking_uri

LEVELS = 3
#: ``train --late-fusion-weight``'s default.
LATE_FUSION_WEIGHT = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "late_fusion_weight")
#: Classes with fewer training products than this form the tail slice (the build's old folding threshold).
TAIL = 5
#: Image weights tried for late fusion, ``log p(title) + w log p(image)``.
FUSION_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
#: Gates tried for late fusion: the image is used only where the title model's level-3 confidence
#: is under the gate (1.0 = everywhere).
FUSION_GATES = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
MODES = ("fused", "title", "image")
#: Not a trained model: logistic regression on frozen ImageNet EfficientNet-Lite0 features (how much
#: the pictures say at ``--probe-image-size`` without any fine-tuning).
PROBE = "image-probe"
#: The image models a late fusion with the title model is reported for.
IMAGE_MODES = ("image", PROBE)
PROBE_C = 0.05
#: A late-fusion fused model's own branches (``train --fusion late``), scored alone: the title
#: branch is what the served model answers without its image, so the image's effect is measured
#: inside one model; the image branch is an image-only model trained by its own loss in that model.
BRANCH_MODES = {"title": "fused-title-branch", "image": "fused-image-branch"}
TITLE_BRANCH = BRANCH_MODES["title"]
#: With ``--title-attributes``, ``baseline`` reads what our models read (title and attribute words);
#: this one reads the products' titles alone, as issue 21's baseline does.
TITLE_BASELINE = "baseline-title"
#: Reported for information only: the mean of the title model's and the baseline's probabilities.
AVERAGE, AVERAGED = "title+baseline", ("title", "baseline")
#: Settings added after models were cached, with the value that leaves them out of the cache key
#: (what models cached before them were trained with).
LATER_SETTINGS = {"title_char_buckets": 0, "seed": 0, "frozen_backbone": False, "image_size": 0, "title_dropout": 0.0,
                  "fusion": "joint", "late_fusion_weight": LATE_FUSION_WEIGHT, "frozen_backbone_until": "",
                  "deterministic": False}


def products_uri(products: str) -> str:
    """The products table of ``products``: a dedupe output, or a Parquet file itself."""
    return products if products.endswith(".parquet") else DedupeLayout(products).products


def cached_predictions(path: Path, make: Callable[[], dict]) -> dict:
    """``make()``'s predictions, saved at ``path`` the first time and read from there after."""
    if not path.exists():
        np.savez(path, **make())
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}


def products_table(work: Path, products: str, limit: int) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The build's input (a dedupe output) and every product's true category path.

    Without ``products``, myntra-dev's ``styles.csv`` (products whose image exists, the first
    ``limit`` when given) with exact image duplicates (same bytes) in one group, as dedupe's
    exact rule groups them.
    """
    if products:
        table = uri.read_parquet(products_uri(products))
        rows = table.select(["product_id", "category_path"]).to_pylist()
        return products, {r["product_id"]: tuple(r["category_path"] or ()) for r in rows}
    items = myntra_products(MYNTRA, limit or 10**9)
    digests = {p["product_id"]: hashlib.sha256(Path(p["image_uri"]).read_bytes()).hexdigest() for p in items}
    first = {}
    for pid in sorted(digests, key=lambda p: (digests[p], p)):
        first.setdefault(digests[pid], pid)
    root = work / f"products-{limit or 'all'}"
    if not uri.exists(DedupeLayout(str(root)).products):
        write_deduped_products(items, root, groups={pid: first[d] for pid, d in digests.items()})
    return str(root), {p["product_id"]: tuple(p["category_path"]) for p in items}


def fold_dataset(products: str, out: Path, args: argparse.Namespace, fold: int):
    """Build (or reuse) fold ``fold``'s dataset with the real TFRecord build."""
    from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig
    from ecom_kfp.tfrecord_build.stage import run
    from ecom_kfp.train.data import TrainingData

    if not uri.exists(str(out / "manifest.json")):
        with stdout_to_stderr():
            run(TFRecordBuildConfig(products=products, out=str(out), image_size=args.image_size, max_levels=LEVELS,
                                    min_class_count=args.min_class_count, cv_folds=args.folds, cv_fold=fold,
                                    title_attributes=args.title_attributes,
                                    progress=False))
    return TrainingData.load(str(out))


def read_records(data, splits: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Product ids and titles of ``splits``, straight from the shards."""
    import tensorflow as tf

    ids, titles = [], []
    shards = [s for split in splits for s in data.shards(split)]
    for batch in tf.data.TFRecordDataset(shards, compression_type="GZIP").batch(512).map(data.spec.parse):
        ids += [v.decode("utf-8") for v in batch[features.PRODUCT_ID].numpy()]
        titles += [v.decode("utf-8") for v in batch[features.TITLE].numpy()]
    return ids, titles


def model_settings(args: argparse.Namespace, mode: str) -> dict:
    """The training settings of ``mode`` (what the cache key and the JSON name)."""
    image = mode != "title"
    frozen = image and args.frozen_backbone
    # A title model has no backbone; the default name keeps TrainConfig valid.
    return {"inputs": mode, "backbone": args.backbone if image else "small-cnn",
            "epochs": args.image_epochs or args.epochs if image else args.epochs,
            "batch_size": args.batch_size, "learning_rate": args.learning_rate, "dropout": DROPOUT,
            "weight_decay": WEIGHT_DECAY, "ema_momentum": EMA_MOMENTUM, "label_smoothing": LABEL_SMOOTHING,
            "level_weights": parse_level_weights(args.level_weights),
            "title_word_buckets": TITLE_WORD_BUCKETS if mode != "image" else 0,
            "logit_adjustment": args.logit_adjustment, "fit_on_val": True,
            "image_head_weight": args.image_head_weight if mode == "fused" else 0.0,
            "title_dropout": args.title_dropout if mode == "fused" else 0.0,
            "weights": args.weights if image else "", "freeze_backbone_epochs": args.freeze_backbone_epochs if image else 0,
            "title_char_buckets": args.title_char_buckets if mode != "image" else 0, "seed": args.seed,
            # Frozen models take the folds' stored size (--image-size); the others the preset's (64 px).
            "frozen_backbone": frozen, "image_size": args.image_size if frozen else 0,
            "frozen_backbone_until": args.frozen_backbone_until if frozen else "",
            "fusion": args.fusion if mode == "fused" else "joint",
            "late_fusion_weight": args.late_fusion_weight if mode == "fused" else LATE_FUSION_WEIGHT,
            "deterministic": args.deterministic}


def cache_key(settings: dict) -> str:
    """The model's cache directory suffix; settings added later count only when on, so models
    cached before they existed keep their key."""
    keyed = {name: value for name, value in settings.items()
             if name not in LATER_SETTINGS or value != LATER_SETTINGS[name]}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]


def train_and_predict(data, out: Path, settings: dict, tracking_uri: str) -> dict:
    """Train one model with the real training stage (unless cached) and predict the fold's test split
    through its serving signature: ``{"ids", "level_k": probabilities, "seconds"}``. Its MLflow run
    goes to ``tracking_uri``, experiment ``bench-cv``."""
    from ecom_kfp.train.stage import run

    predictions = out / "predictions.npz"
    if predictions.exists():
        with np.load(predictions) as cached:
            return {k: cached[k] for k in cached.files}
    start = time.perf_counter()
    with stdout_to_stderr():
        run(TrainConfig(data=data.layout.root, out=str(out / "model"), resume=False, mlflow_tracking_uri=tracking_uri,
                        experiment_name="bench-cv", **settings))
    seconds = time.perf_counter() - start
    ids, probabilities = serve_test_split(str(out / "model"), data)
    result = {"ids": np.array(ids), "seconds": np.array(seconds),
              **{f"level_{k}": p for k, p in enumerate(probabilities, start=1)}}
    np.savez(predictions, **result)
    return result


def serve_test_split(model_dir: str, data) -> tuple[list[str], list[np.ndarray]]:
    """Per-level probabilities of the test split from the exported serving signature."""
    signature = serving.load_signature(ModelLayout(model_dir).saved_model)
    return predict_test_split(data, lambda batch: signature(
        **{serving.INPUT_IMAGE: batch[features.IMAGE], serving.INPUT_TITLE: batch[features.TITLE]}))


def predict_test_split(data, predict: Callable[[dict], dict]) -> tuple[list[str], list[np.ndarray]]:
    """Product ids and per-level probabilities of the test split, in shard order; ``predict`` maps a
    batch of parsed records to ``{"level_k": probabilities}``."""
    import tensorflow as tf

    ids, levels = [], [[] for _ in range(data.spec.num_levels)]
    for batch in tf.data.TFRecordDataset(data.shards("test"), compression_type="GZIP").batch(128).map(data.spec.parse):
        outputs = predict(batch)
        ids += [v.decode("utf-8") for v in batch[features.PRODUCT_ID].numpy()]
        for k, parts in enumerate(levels, start=1):
            parts.append(np.asarray(outputs[serving.output_key(k)]))
    return ids, [np.concatenate(parts) for parts in levels]


def branch_predictions(out: Path, data, settings: dict, branch: str) -> dict:
    """The test split's per-level probabilities of one branch of a late-fusion model alone
    (:func:`~ecom_kfp.train.model.branch_classifier` on its ``model.keras``), cached in ``out``."""
    def predict() -> dict:
        import keras

        from ecom_kfp.contracts.serving import MODEL_IMAGE_INPUT
        from ecom_kfp.train.data import image_decoder
        from ecom_kfp.train.model import branch_classifier
        from ecom_kfp.train.trainer import load

        model = branch_classifier(keras.models.load_model(ModelLayout(str(out / "model")).keras_model), branch,
                                  data.spec.num_levels)
        if branch == "title":
            tokenizer = load(TrainConfig(data=data.layout.root, out=str(out / "model"), **settings)).tokenizer
            ids, probabilities = predict_test_split(data, lambda batch: model(tokenizer.model_inputs(batch[features.TITLE])))
        else:
            decode = image_decoder(data.spec, model.input[MODEL_IMAGE_INPUT].shape[1])
            ids, probabilities = predict_test_split(data, lambda batch: model(
                {MODEL_IMAGE_INPUT: keras.ops.cast(decode(batch[features.IMAGE]), "float32")}))
        return {"ids": np.array(ids), "seconds": np.array(0.0),
                **{f"level_{k}": p for k, p in enumerate(probabilities, start=1)}}

    return cached_predictions(out / f"{branch}-branch-predictions.npz", predict)


def baseline_predictions(data, paths: dict[str, tuple[str, ...]], args: argparse.Namespace,
                         titles: dict[str, str] | None = None) -> dict:
    """TF-IDF (word 1-2 + char 2-4 grams) + logistic regression on the titles of the same fit splits,
    trained on every class name seen there (it folds nothing). The titles are the records' (what our
    models read), or ``titles[product_id]`` when given."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    start = time.perf_counter()
    train_ids, train_titles = read_records(data, ("train", "val"))
    test_ids, test_titles = read_records(data, ("test",))
    if titles is not None:
        train_titles, test_titles = [titles[p] for p in train_ids], [titles[p] for p in test_ids]
    result: dict = {"ids": np.array(test_ids)}
    for level in range(1, LEVELS + 1):
        names = [class_name(paths[pid], level) or "" for pid in train_ids]
        features_union = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True))
        model = make_pipeline(features_union, LogisticRegression(C=args.baseline_c, max_iter=2000))
        model.fit(train_titles, names)
        result[f"level_{level}"] = model.predict_proba(test_titles)
        result[f"classes_{level}"] = np.array(model.classes_)
    result["seconds"] = np.array(time.perf_counter() - start)
    return result


def product_titles(products: str) -> dict[str, str]:
    """Every product's own title, from the build's input."""
    rows = uri.read_parquet(products_uri(products), columns=["product_id", "title"]).to_pylist()
    return {r["product_id"]: r["title"] for r in rows}


def probe_features(work: Path, products: str, size: int) -> dict[str, np.ndarray]:
    """Every product's frozen ImageNet EfficientNet-Lite0 feature vector (1,280 floats) at ``size``
    px (padded like the build), computed once and cached under ``work``."""
    cached = work / f"probe-features-{hashlib.sha256(products.encode()).hexdigest()[:10]}-{size}.npz"
    if not cached.exists():
        import io

        from PIL import Image

        from ecom_kfp.contracts.features import resize_pil
        from ecom_kfp.train.backbones import build_backbone
        from ecom_kfp.train.pretrained import load_lite0_imagenet

        table = uri.read_parquet(products_uri(products), columns=["product_id", "image_uri"]).to_pylist()
        backbone = build_backbone("efficientnet-lite0", size)
        load_lite0_imagenet(backbone)
        vectors = []
        for start in range(0, len(table), 128):
            batch = [resize_pil(Image.open(io.BytesIO(uri.read_bytes(row["image_uri"]))).convert("RGB"), size, "pad")
                     for row in table[start:start + 128]]
            vectors.append(backbone.predict(np.stack([np.asarray(i, dtype=np.float32) for i in batch]), verbose=0))
        np.savez(cached, ids=np.array([row["product_id"] for row in table]), x=np.concatenate(vectors))
    with np.load(cached) as stored:
        return dict(zip(stored["ids"].tolist(), stored["x"], strict=True))


def probe_predictions(fit_ids: list[str], test_ids: list[str], paths: dict[str, tuple[str, ...]],
                      features: Callable[[], dict[str, np.ndarray]], classes: list[list[str]]) -> dict:
    """Image-only predictions of a fold's test products by a logistic regression per level on the
    frozen features of its fit products (``features()``: every product's vector), in the fold's
    vocabularies (so it fuses with our models)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    vectors = features()
    start = time.perf_counter()
    fit_x, test_x = np.stack([vectors[p] for p in fit_ids]), np.stack([vectors[p] for p in test_ids])
    result: dict = {"ids": np.array(test_ids)}
    for level in range(1, LEVELS + 1):
        # Strong regularisation: 1,280 features against a few thousand products (C was not tuned).
        model = make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=300))
        model.fit(fit_x, [class_name(paths[pid], level) or "" for pid in fit_ids])
        column = {name: i for i, name in enumerate(classes[level - 1])}
        fitted = model.predict_proba(test_x)
        probabilities = np.zeros((len(test_ids), len(column)))
        for j, name in enumerate(model.classes_):
            if name in column:  # a class the build folded has no column of its own
                probabilities[:, column[name]] += fitted[:, j]
        result[f"level_{level}"] = probabilities
    result["seconds"] = np.array(time.perf_counter() - start)
    return result


def truth(ids, paths: dict[str, tuple[str, ...]], level: int) -> np.ndarray:
    return np.array([class_name(paths[pid], level) or "" for pid in ids])


def stats(values: list[float]) -> dict:
    """Mean and sample standard deviation over folds."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "folds": len(arr)}


class Fold:
    """One fold's test products, truth and the models' predictions (rows aligned on ``ids``)."""

    def __init__(self, index: int, ids: list[str], paths: dict[str, tuple[str, ...]], train_counts: Counter) -> None:
        self.index, self.ids = index, list(ids)
        self.truth = {k: truth(ids, paths, k) for k in range(1, LEVELS + 1)}
        self.tail = np.array([train_counts[name] < TAIL for name in self.truth[LEVELS]])
        self.models: dict[str, dict] = {}  # mode -> {"probabilities": {k: [n, C]}, "classes": {k: [C]}, "seconds"}

    def add(self, mode: str, predictions: dict, classes: list[list[str]]) -> None:
        order = {pid: i for i, pid in enumerate(predictions["ids"].tolist())}
        rows = np.array([order[pid] for pid in self.ids])
        self.models[mode] = {"probabilities": {k: predictions[f"level_{k}"][rows] for k in range(1, LEVELS + 1)},
                             "classes": {k: np.asarray(classes[k - 1]) for k in range(1, LEVELS + 1)},
                             "seconds": float(predictions["seconds"])}

    def add_average(self, mode: str, members: tuple[str, ...]) -> None:
        """Add ``mode``: the mean of ``members``' probabilities over the union of their class names
        (a class a member lacks gets probability 0 from it); its time is the members' sum."""
        probabilities, classes = {}, {}
        for k in range(1, LEVELS + 1):
            classes[k] = np.array(sorted({name for m in members for name in self.models[m]["classes"][k].tolist()}))
            total = np.zeros((len(self.ids), len(classes[k])))
            for m in members:
                total[:, np.searchsorted(classes[k], self.models[m]["classes"][k])] += self.models[m]["probabilities"][k]
            probabilities[k] = total / len(members)
        self.models[mode] = {"probabilities": probabilities, "classes": classes,
                             "seconds": sum(self.models[m]["seconds"] for m in members)}

    def predicted(self, mode: str, probabilities: dict | None = None) -> dict[int, np.ndarray]:
        model = self.models[mode]
        probabilities = probabilities or model["probabilities"]
        return {k: model["classes"][k][probabilities[k].argmax(axis=1)] for k in range(1, LEVELS + 1)}

    def correct(self, mode: str, probabilities: dict | None = None) -> dict[int, np.ndarray]:
        return {k: names == self.truth[k] for k, names in self.predicted(mode, probabilities).items()}

    def target(self, mode: str, level: int) -> np.ndarray:
        """True class index in the model's classes, -1 where the model has no such class."""
        index = {name: i for i, name in enumerate(self.models[mode]["classes"][level].tolist())}
        return np.array([index.get(name, -1) for name in self.truth[level]])


def late_fusion(fold: Fold, weight: float, gate: float = 1.0, image: str = "image") -> dict[int, np.ndarray]:
    """Per-level ``log p(title) + weight * log p(image)`` (same vocabularies: same fold build), the
    image term only on products whose title model's level-3 confidence is under ``gate``: a
    confident title is left alone, so the image can speak only where the title says little."""
    title = fold.models["title"]["probabilities"]
    uncertain = (title[LEVELS].max(axis=1) < gate)[:, None] if gate < 1.0 else True
    return {k: np.log(np.clip(title[k], 1e-12, 1)) +
            weight * uncertain * np.log(np.clip(fold.models[image]["probabilities"][k], 1e-12, 1))
            for k in range(1, LEVELS + 1)}


def image_changes(fold: Fold, without_image: str, with_image: dict) -> dict:
    """Share of products whose answer changes once the image is used, right and wrong, per level;
    ``without_image`` is the model answering from the title alone."""
    out = {}
    title_names, title_correct = fold.predicted(without_image), fold.correct(without_image)
    for k in range(1, LEVELS + 1):
        changed = title_names[k] != with_image["names"][k]
        out[f"level_{k}"] = {"changed": float(changed.mean()),
                             "changed_and_right": float((changed & with_image["correct"][k]).mean()),
                             "changed_and_wrong": float((changed & ~with_image["correct"][k]).mean()),
                             "title_right_image_version_wrong": float((title_correct[k] & ~with_image["correct"][k]).mean())}
    return out


def evaluate_folds(folds: list[Fold], modes: list[str]) -> dict:
    """Per fold and aggregated accuracy, tail slice, calibration and image uplift."""
    result: dict = {"models": {}}
    for mode in modes:
        per_fold = []
        for fold in folds:
            correct = fold.correct(mode)
            per_fold.append({"fold": fold.index, "products": len(fold.ids), "train_seconds": fold.models[mode]["seconds"],
                             **{f"level_{k}": float(c.mean()) for k, c in correct.items()},
                             "tail_products": int(fold.tail.sum()),
                             "tail_level_3": float(correct[LEVELS][fold.tail].mean()) if fold.tail.any() else None,
                             "head_level_3": float(correct[LEVELS][~fold.tail].mean())})
        result["models"][mode] = {
            "per_fold": per_fold,
            **{key: stats([f[key] for f in per_fold]) for key in (*(f"level_{k}" for k in range(1, LEVELS + 1)),
                                                                   "tail_level_3", "head_level_3", "train_seconds")},
            "calibration": calibration(folds, mode)}
    for baseline in (m for m in ("baseline", TITLE_BASELINE) if m in modes):
        for mode in (m for m in modes if m != baseline):
            result["models"][mode][f"minus_{baseline.replace('-', '_')}"] = {
                f"level_{k}": stats([a[f"level_{k}"] - b[f"level_{k}"] for a, b in zip(
                    result["models"][mode]["per_fold"], result["models"][baseline]["per_fold"], strict=True)])
                for k in range(1, LEVELS + 1)}
    if "title" in modes and "fused" in modes:
        result["fused_vs_title"] = {"per_fold": [image_changes(f, "title", {
            "names": f.predicted("fused"), "correct": f.correct("fused")}) for f in folds]}
    if "fused" in modes and TITLE_BRANCH in modes:
        per_fold = [image_changes(f, TITLE_BRANCH, {"names": f.predicted("fused"), "correct": f.correct("fused")})
                    for f in folds]
        result["fused_vs_its_title_branch"] = {
            "per_fold": per_fold, **{f"level_{k}": {key: stats([p[f"level_{k}"][key] for p in per_fold])
                                                     for key in per_fold[0][f"level_{k}"]} for k in range(1, LEVELS + 1)}}
    for image in (m for m in IMAGE_MODES if m in modes and "title" in modes):
        suffix = "" if image == "image" else f"_{image.replace('-', '_')}"
        result[f"late_fusion{suffix}"] = late_fusion_report(folds, image=image)
        result[f"gated_late_fusion{suffix}"] = late_fusion_report(folds, FUSION_GATES, image=image)
    return result


def late_fusion_report(folds: list[Fold], gates: tuple[float, ...] = (1.0,), image: str = "image") -> dict:
    """The title-only model and image model ``image`` fused late, the image weight (and, with
    ``gates``, the title-confidence gate) chosen on the other folds' level 3."""
    grid = [(w, g) for g in gates for w in FUSION_WEIGHTS]
    accuracy = {(w, g): [float(f.correct("title", late_fusion(f, w, g, image))[LEVELS].mean()) for f in folds]
                for w, g in grid}
    per_fold = []
    for i, fold in enumerate(folds):
        others = [j for j in range(len(folds)) if j != i] or [i]
        # Ties go to the smaller weight, then to the higher gate: the least image use that scores best.
        weight, gate = max(grid, key=lambda wg: (np.mean([accuracy[wg][j] for j in others]), -wg[0], wg[1]))
        fused = late_fusion(fold, weight, gate, image)
        correct = fold.correct("title", fused)
        per_fold.append({"fold": fold.index, "image_weight": weight, "gate": gate,
                         **{f"level_{k}": float(c.mean()) for k, c in correct.items()},
                         "image_changes": image_changes(fold, "title", {
                             "names": fold.predicted("title", fused), "correct": correct})})
    return {"image_weights_tried": list(FUSION_WEIGHTS), "gates_tried": list(gates), "per_fold": per_fold,
            **{f"level_{k}": stats([f[f"level_{k}"] for f in per_fold]) for k in range(1, LEVELS + 1)},
            "level_3_by_weight_and_gate": {f"{w}@{g}": stats(v) for (w, g), v in accuracy.items()}}


def calibration(folds: list[Fold], mode: str) -> dict:
    """Expected calibration error per level over every fold's test products, before and after
    temperature scaling; each fold's temperature is fitted on the other folds' predictions.
    Products of folded classes count as errors in both."""
    out = {}
    for k in range(1, LEVELS + 1):
        raw, calibrated, temperatures = [], [], []
        for i, fold in enumerate(folds):
            others = [f for j, f in enumerate(folds) if j != i] or [fold]
            # Fitted on the products whose class the fold's model knows; judged on all of this fold's.
            known = [(f.models[mode]["probabilities"][k], f.target(mode, k)) for f in others]
            temperature = fit_pooled_temperature([(p[y >= 0], y[y >= 0]) for p, y in known])
            probabilities = fold.models[mode]["probabilities"][k]
            correct = fold.correct(mode)[k]
            raw.append((probabilities.max(axis=1), correct))
            calibrated.append((temperature_scale(probabilities, temperature).max(axis=1), correct))
            temperatures.append(temperature)
        out[f"level_{k}"] = {"ece": expected_calibration_error(*map(np.concatenate, zip(*raw, strict=True))),
                             "ece_temperature_scaled": expected_calibration_error(
                                 *map(np.concatenate, zip(*calibrated, strict=True))),
                             "temperatures": temperatures}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/work/cache/quality/cv", help="cache directory (datasets, models, predictions)")
    parser.add_argument("--products", default="", help="a dedupe output to use instead of styles.csv (its groups)")
    parser.add_argument("--limit", type=int, default=0, help="first N products only (smoke tests), 0 = all")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--only-folds", default="", help="comma-separated fold indices to run (default: all)")
    parser.add_argument("--models", default="fused,title,image,baseline", help="models to train or aggregate")
    parser.add_argument("--image-size", type=int, default=64, help="stored and model image size")
    parser.add_argument("--min-class-count", type=int, default=1, help="the build's folding threshold")
    parser.add_argument("--backbone", default="small-cnn", help="image backbone")
    parser.add_argument("--weights", default="", help="backbone weights to start from (.weights.h5)")
    parser.add_argument("--freeze-backbone-epochs", type=int, default=0, help="epochs the backbone stays frozen")
    parser.add_argument("--frozen-backbone", action="store_true",
                        help="image and fused models: train with the --weights backbone frozen, its features computed "
                             "once per product (train --frozen-backbone), at --image-size px")
    parser.add_argument("--frozen-backbone-until", default="", metavar="LAYER",
                        help="with --frozen-backbone: freeze the backbone only up to this layer and fine-tune the "
                             "layers after it (train --frozen-backbone-until)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs per model")
    parser.add_argument("--image-epochs", type=int, default=0, help="epochs of the image and fused models, 0 = --epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="base learning rate")
    parser.add_argument("--logit-adjustment", type=float, default=0.0, help="tail loss strength, 0 = off")
    parser.add_argument("--image-head-weight", type=float, default=0.0, help="fused model's image-only heads' loss weight")
    parser.add_argument("--title-dropout", type=float, default=0.0,
                        help="fused model: share of training examples whose title branch is zeroed (train --title-dropout)")
    parser.add_argument("--fusion", default="joint", choices=("joint", "late"),
                        help="fused model: train --fusion (late = heads per branch, served logits added)")
    parser.add_argument("--late-fusion-weight", type=float, default=LATE_FUSION_WEIGHT,
                        help="fused model with --fusion late: the image logits' weight (train --late-fusion-weight)")
    parser.add_argument("--title-char-buckets", type=int, default=TITLE_CHAR_BUCKETS,
                        help="character n-gram hash buckets, 0 = off")
    parser.add_argument("--probe-image-size", type=int, default=224,
                        help=f"image size of {PROBE} (frozen ImageNet Lite0 features + logistic regression)")
    parser.add_argument("--title-attributes", type=comma_separated, default=[],
                        metavar="NAME,...",
                        help="catalog columns the models read after the title (tfrecord-build --title-attributes); "
                             f"add {TITLE_BASELINE} to --models for the baseline on titles alone")
    parser.add_argument("--level-weights", default=LEVEL_WEIGHTS, help="loss weight per level, level 1 first")
    parser.add_argument("--seed", type=int, default=0, help="training seed of our models (repeats measure training noise)")
    parser.add_argument("--deterministic", action="store_true",
                        help="train our models with train --deterministic (training examples in a fixed order "
                             "whatever the machine's load; slower input)")
    parser.add_argument("--baseline-c", type=float, default=20.0, help="baseline's inverse regularisation")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    products, paths = products_table(work, args.products, args.limit)
    modes = args.models.split(",")
    indices = [int(i) for i in args.only_folds.split(",")] if args.only_folds else list(range(args.folds))
    root = work / (f"k{args.folds}-s{args.image_size}-m{args.min_class_count}-n{args.limit or 'all'}"
                   + (f"-a{'-'.join(args.title_attributes)}" if args.title_attributes else ""))
    settings = {mode: model_settings(args, mode) for mode in modes if mode in MODES}
    averaged = set(AVERAGED) <= set(modes)
    own_titles = product_titles(products) if TITLE_BASELINE in modes else None
    # One store for every model of the benchmark (train's own choice for a run writing to root),
    # to compare their runs side by side; a store of each model's own would also cost each 2 s of
    # schema migrations.
    tracking_uri = resolve_tracking_uri("", str(root))
    root.mkdir(parents=True, exist_ok=True)
    folds = []
    for index in indices:
        data = fold_dataset(products, root / f"fold-{index}" / "data", args, index)
        fit_ids, _ = read_records(data, ("train", "val"))
        test_ids, _ = read_records(data, ("test",))
        fold = Fold(index, test_ids, paths, Counter(class_name(paths[pid], LEVELS) for pid in fit_ids))
        classes = [v.classes for v in data.vocabularies]
        for mode in modes:
            if mode == PROBE:
                predictions = cached_predictions(
                    root / f"fold-{index}" / f"{PROBE}-{args.probe_image_size}-predictions.npz",
                    partial(probe_predictions, fit_ids, test_ids, paths,
                            partial(probe_features, work, products, args.probe_image_size), classes))
                fold.add(mode, predictions, classes)
                continue
            if mode in ("baseline", TITLE_BASELINE):
                predictions = cached_predictions(root / f"fold-{index}" / f"{mode}-predictions.npz",
                                                 partial(baseline_predictions, data, paths, args,
                                                         None if mode == "baseline" else own_titles))
                fold.add(mode, predictions, [predictions[f"classes_{k}"].tolist() for k in range(1, LEVELS + 1)])
                continue
            out = root / f"fold-{index}" / f"{mode}-{cache_key(settings[mode])}"
            out.mkdir(parents=True, exist_ok=True)
            (out / "settings.json").write_text(json.dumps(settings[mode], indent=1))
            fold.add(mode, train_and_predict(data, out, settings[mode], tracking_uri), classes)
            if mode == "fused" and settings[mode]["fusion"] == "late":
                for branch, name in BRANCH_MODES.items():
                    fold.add(name, branch_predictions(out, data, settings[mode], branch), classes)
        if averaged:
            fold.add_average(AVERAGE, AVERAGED)
        folds.append(fold)
    print(json.dumps({"benchmark": "cv_quality", "folds": args.folds, "fold_indices": indices,
                      "products": products, "image_size": args.image_size, "min_class_count": args.min_class_count,
                      "title_attributes": args.title_attributes,
                      "tail_threshold": TAIL, "settings": settings,
                      "baseline": {"features": "tfidf word 1-2 + char_wb 2-4", "C": args.baseline_c},
                      **({PROBE: {"features": "frozen ImageNet EfficientNet-Lite0, average-pooled (1,280)",
                                  "image_size": args.probe_image_size, "C": PROBE_C,
                                  "note": "train_seconds excludes computing the features"}} if PROBE in modes else {}),
                      "goals": {"level_2": 0.985, "level_3": 0.955, "fused_minus_baseline_level_3": 0.01,
                                "image_level_3": 0.85, "train_seconds": 1800},
                      **evaluate_folds(folds, modes + [AVERAGE] * averaged +
                                       [name for name in BRANCH_MODES.values() if all(name in f.models for f in folds)])},
                     indent=1))


if __name__ == "__main__":
    main()
