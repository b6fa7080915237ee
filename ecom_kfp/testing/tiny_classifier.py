"""A tiny but real product classifier and dataset, for tests and benchmarks of evaluate and push.

The dataset has two taxonomy levels (Apparel/Footwear, then two classes each); every product has a
solid-colour JPEG (with noise) and a title naming its class, and a share of titles names the wrong
class so no model is perfect. The model is a ``tf.Module`` exported as a SavedModel with exactly
the serving signature of :mod:`ecom_kfp.contracts.serving`: it decodes and resizes the raw image
bytes with :func:`ecom_kfp.contracts.features.decode_and_resize`, takes the mean colour plus a
hashed bag of title words, and applies one linear softmax head per level. Heads are fitted in
closed form (ridge regression on one-hot targets), so the same inputs always give the same model.
``use_title=False`` gives a weaker image-only model: top- and bottom-wear share a colour.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ecom_kfp import uri
from ecom_kfp.contracts import serving
from ecom_kfp.contracts.digests import DIGESTS_KEY, tree_digests, write_model_digests
from ecom_kfp.contracts.features import MANIFEST_KEY, FeatureSpec, decode_and_resize, resize_pil
from ecom_kfp.contracts.labels import OTHER, SEPARATOR, Vocabulary, class_name, save_all
from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout
from ecom_kfp.contracts.training import TrainingRecord


@dataclass(frozen=True)
class Category:
    """A leaf category of the tiny taxonomy."""

    path: tuple[str, str]
    colour: tuple[int, int, int]
    keyword: str
    business_value: float


CATEGORIES = (
    Category(("Apparel", "Topwear"), (200, 40, 40), "shirt", 5.0),
    Category(("Apparel", "Bottomwear"), (200, 40, 40), "jeans", 1.0),
    Category(("Footwear", "Shoes"), (40, 40, 200), "sneaker", 10.0),
    Category(("Footwear", "Sandal"), (40, 40, 200), "sandal", 2.0),
)
ADJECTIVES = ("classic", "slim", "casual", "summer", "sport", "soft", "urban", "light")
SPEC = FeatureSpec(num_levels=2, title_vector_dim=4, image_size=24, resize_mode="pad")
HASH_BUCKETS = 64
RIDGE = 1e-2
#: Logit scale: makes softmax confidences spread over (0, 1) instead of hugging 1/C.
TEMPERATURE = 6.0


def vocabularies() -> list[Vocabulary]:
    """Level 1 and level 2 vocabularies (``other`` first)."""
    return [Vocabulary(level, (OTHER, *dict.fromkeys(class_name(c.path, level) for c in CATEGORIES)))
            for level in (1, 2)]


@dataclass(frozen=True)
class Record:
    """One product as the dataset builder would write it."""

    product_id: str
    title: str
    image_jpeg: bytes
    labels: tuple[int, ...]
    business_value: float
    category_path: str = ""


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_records(per_category: int, seed: int, title_noise: float = 0.15,
                 vocabs: Sequence[Vocabulary] | None = None) -> list[Record]:
    """``per_category`` products of every category; a ``title_noise`` share of titles names another class.

    Labels are looked up in ``vocabs`` (default :func:`vocabularies`): a vocabulary without a
    category labels its products ``other``, as the build does for a folded class.
    """
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    vocabs = vocabs or vocabularies()
    records = []
    for c_index, category in enumerate(CATEGORIES):
        for i in range(per_category):
            pixels = np.clip(np.array(category.colour) + noise.normal(0, 25, (30, 40, 3)), 0, 255).astype(np.uint8)
            image = resize_pil(Image.fromarray(pixels), SPEC.image_size, SPEC.resize_mode)
            keyword = category.keyword if rng.random() >= title_noise else rng.choice(
                [c.keyword for c in CATEGORIES if c is not category])
            labels = tuple(vocabs[level - 1].lookup(class_name(category.path, level)) for level in (1, 2))
            records.append(Record(f"s{seed}-c{c_index}-{i}", f"{rng.choice(ADJECTIVES)} {keyword}", _jpeg(image),
                                  labels, category.business_value, SEPARATOR.join(category.path)))
    rng.shuffle(records)
    return records


def write_dataset(root: str, test: Sequence[Record], vocabs: Sequence[Vocabulary] | None = None,
                  shards: int = 2, val: Sequence[Record] = (),
                  train_counts: Sequence[Mapping[str, int]] | None = None) -> DatasetLayout:
    """Write a ``DatasetLayout``: ``test`` (and ``val``) as GZIP shards, labels and manifest.

    Args:
        root: Where.
        test: The test split.
        vocabs: Label vocabularies (default :func:`vocabularies`).
        shards: Shards per split.
        val: The validation split (none by default).
        train_counts: Per level, training examples per class name, kept or not; the manifest
            records them as the build does (vocabulary classes under ``counts.train``, the others
            as folded classes). None = a manifest without training counts.
    """
    import tensorflow as tf

    layout = DatasetLayout(root)
    vocabs = vocabs or vocabularies()
    for split, records in (("test", test), ("val", val)):
        if split == "val" and not records:
            continue
        uri.makedirs(layout.split_dir(split))
        for index in range(shards):
            with tf.io.TFRecordWriter(layout.shard(split, index, shards), options="GZIP") as writer:
                for record in records[index::shards]:
                    writer.write(SPEC.serialize(image_jpeg=record.image_jpeg, title=record.title,
                                                title_vector=[0.0] * SPEC.title_vector_dim, labels=record.labels,
                                                business_value=record.business_value, product_id=record.product_id,
                                                group_id=record.product_id, category_path=record.category_path))
    save_all(vocabs, layout.labels)
    manifest: dict = {MANIFEST_KEY: SPEC.to_dict(), "counts": {"test": {"total": len(test)}, "val": {"total": len(val)}}}
    if train_counts is not None:
        manifest["counts"]["train"] = {
            f"level_{v.level}": {name: counts.get(name, 0) for name in v.classes}
            for v, counts in zip(vocabs, train_counts, strict=True)}
        manifest["folding"] = {"levels": {
            f"level_{v.level}": {
                "folded_classes": {n: c for n, c in counts.items() if not v.contains(n) and n != OTHER}}
            for v, counts in zip(vocabs, train_counts, strict=True)}}
    manifest[DIGESTS_KEY] = tree_digests(root)
    uri.write_json(layout.manifest, manifest)
    return layout


def _features(image_bytes, title, use_title: bool):
    import tensorflow as tf

    images = tf.map_fn(lambda b: decode_and_resize(b, SPEC.image_size, SPEC.resize_mode), image_bytes,
                       fn_output_signature=tf.TensorSpec([SPEC.image_size, SPEC.image_size, 3], tf.float32))
    colour = tf.reduce_mean(images, axis=[1, 2]) / 255.0
    words = tf.strings.to_hash_bucket_fast(tf.strings.split(tf.strings.lower(title)), HASH_BUCKETS)
    bag = tf.reduce_sum(tf.one_hot(words, HASH_BUCKETS), axis=1)
    if not use_title:
        bag = tf.zeros_like(bag)
    return tf.concat([colour, bag, tf.ones_like(colour[:, :1])], axis=1)


def _module(heads: Sequence[np.ndarray], use_title: bool):
    import tensorflow as tf

    class TinyClassifier(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = [tf.Variable(h, dtype=tf.float32, name=f"head_{k + 1}") for k, h in enumerate(heads)]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving.INPUT_IMAGE),
                                      tf.TensorSpec([None], tf.string, name=serving.INPUT_TITLE)])
        def serve(self, image_bytes, title):
            x = _features(image_bytes, title, use_title)
            return {serving.output_key(k + 1): tf.nn.softmax(TEMPERATURE * tf.matmul(x, h))
                    for k, h in enumerate(self.heads)}

    return TinyClassifier()


def export_model(root: str, train: Sequence[Record], dataset: DatasetLayout, use_title: bool = True,
                 vocabs: Sequence[Vocabulary] | None = None, fit_splits: Sequence[str] = ("train",)) -> ModelLayout:
    """Fit the heads on ``train`` and write a ``ModelLayout`` (saved_model/, labels/, dataset_manifest.json,
    training.json saying ``fit_splits``; empty: no training.json, as a model of an older ecom-kfp)."""
    import tensorflow as tf

    vocabs = vocabs or vocabularies()

    x = _features(tf.constant([r.image_jpeg for r in train]), tf.constant([r.title for r in train]), use_title).numpy()
    gram = x.T @ x + RIDGE * np.eye(x.shape[1])
    heads = []
    for k, vocabulary in enumerate(vocabs):
        targets = np.eye(len(vocabulary))[[r.labels[k] for r in train]]
        heads.append(np.linalg.solve(gram, x.T @ targets).astype(np.float32))
    module = _module(heads, use_title)
    layout = ModelLayout(root)
    uri.makedirs(root)
    tf.saved_model.save(module, layout.saved_model, signatures={serving.SIGNATURE: module.serve.get_concrete_function()})
    save_all(vocabs, layout.labels)
    uri.write_text(layout.manifest, json.dumps(uri.read_json(dataset.manifest), sort_keys=True))
    if fit_splits:
        TrainingRecord.of(fit_splits).write(layout)
    write_model_digests(layout)
    return layout


def with_label(record: Record, level: int, label: int) -> Record:
    """``record`` with its label at ``level`` (1-based) replaced, e.g. by an id beyond the vocabulary."""
    labels = list(record.labels)
    labels[level - 1] = label
    return replace(record, labels=tuple(labels))
