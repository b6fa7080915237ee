"""Batch inference over the test split through the exported serving signature.

The model is called exactly as a server would call it (raw image bytes + title strings through
:data:`ecom_kfp.contracts.serving.SIGNATURE`), so what is measured is what will be served.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts import features, serving
from ecom_kfp.contracts.labels import vocabulary_uri
from ecom_kfp.evaluate.inputs import EvaluationInputs
from ecom_kfp.evaluate.metrics import LevelPredictions

#: Misclassified example images kept per (level, true, predicted) pair, and in total, for the report.
EXAMPLES_PER_CONFUSION = 3
MAX_EXAMPLE_IMAGES = 2000


@dataclass
class TestSetPredictions:
    """Everything inference learns about the test split.

    Attributes:
        levels: Per-level predictions, level 1 first.
        labels: True class ids ``[n, num_levels]``.
        business_values: The records' ``business_value`` feature ``[n]``.
        product_ids: Catalog ids ``[n]``.
        confusion_images: ``(level, true, predicted) -> [JPEG bytes]`` of misclassified examples.
        fingerprint: Order-independent hash of (product id, labels) of the test split: equal
            fingerprints mean the same test examples with the same labels.
        seconds: Wall-clock time of read + inference.
    """

    levels: list[LevelPredictions]
    labels: np.ndarray
    business_values: np.ndarray
    product_ids: list[str]
    confusion_images: dict[tuple[int, int, int], list[bytes]] = field(default_factory=dict)
    fingerprint: str = ""
    seconds: float = 0.0

    @property
    def examples(self) -> int:
        return len(self.product_ids)


def test_fingerprint(product_ids: list[str], labels: np.ndarray) -> str:
    """Hash of the sorted ``product_id:label,label,...`` lines."""
    lines = sorted(f"{pid}:{','.join(map(str, row))}" for pid, row in zip(product_ids, labels.tolist(), strict=True))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _check_labels(batch_labels: np.ndarray, product_ids: np.ndarray, inputs: EvaluationInputs) -> None:
    for k, vocabulary in enumerate(inputs.vocabularies):
        bad = (batch_labels[:, k] < 0) | (batch_labels[:, k] >= len(vocabulary))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"--data {inputs.dataset.root}: test record {product_ids[i].decode('utf-8', 'replace')!r} has "
                f"{features.label_key(k + 1)}={int(batch_labels[i, k])}, but "
                f"{vocabulary_uri(inputs.model.labels, k + 1)} has only {len(vocabulary)} classes")


def predict_test_split(inputs: EvaluationInputs, batch_size: int = 64, top_k: int = 5) -> TestSetPredictions:
    """Run the SavedModel's serving signature over every test record.

    Raises:
        ValueError: a label id outside its vocabulary, a model output of the wrong width, or an
            empty test split.
    """
    import tensorflow as tf

    start = time.perf_counter()
    with uri.local_copy(inputs.model.saved_model) as saved_model, \
            uri.local_copy(inputs.dataset.split_dir("test")) as test_dir:
        signature = serving.load_signature(saved_model)
        shards = uri.list_files(test_dir, suffix=".tfrecord.gz")
        records = (tf.data.TFRecordDataset(shards, compression_type="GZIP")
                   .batch(batch_size).map(inputs.spec.parse, num_parallel_calls=tf.data.AUTOTUNE)
                   .prefetch(tf.data.AUTOTUNE))
        per_level: list[list[LevelPredictions]] = [[] for _ in inputs.vocabularies]
        labels, values, ids = [], [], []
        images: dict[tuple[int, int, int], list[bytes]] = {}
        kept_images = 0
        for batch in tqdm(records, desc="evaluate", unit="batch", leave=False):
            batch_labels = np.stack([batch[key].numpy() for key in inputs.spec.label_keys], axis=1)
            batch_ids = batch[features.PRODUCT_ID].numpy()
            _check_labels(batch_labels, batch_ids, inputs)
            outputs = signature(**{serving.INPUT_IMAGE: batch[features.IMAGE], serving.INPUT_TITLE: batch[features.TITLE]})
            for k, vocabulary in enumerate(inputs.vocabularies):
                probabilities = outputs[serving.output_key(k + 1)].numpy()
                if probabilities.shape[1] != len(vocabulary):
                    raise ValueError(f"--model {inputs.model.root}: output {serving.output_key(k + 1)} has "
                                     f"{probabilities.shape[1]} classes, labels have {len(vocabulary)}")
                level = LevelPredictions.from_probabilities(k + 1, probabilities, batch_labels[:, k], top_k)
                per_level[k].append(level)
                for i in np.flatnonzero(~level.correct):
                    key = (k + 1, int(level.y_true[i]), int(level.y_pred[i]))
                    kept = images.setdefault(key, [])
                    if len(kept) < EXAMPLES_PER_CONFUSION and kept_images < MAX_EXAMPLE_IMAGES:
                        kept.append(batch[features.IMAGE][i].numpy())
                        kept_images += 1
            labels.append(batch_labels)
            values.append(batch[features.BUSINESS_VALUE].numpy())
            ids.extend(pid.decode("utf-8") for pid in batch_ids)
    if not ids:
        raise ValueError(f"--data {inputs.dataset.root}: the test split has no records "
                         f"({len(inputs.test_shards)} empty shard(s))")
    all_labels = np.concatenate(labels)
    return TestSetPredictions(
        levels=[LevelPredictions.concat(parts) for parts in per_level],
        labels=all_labels,
        business_values=np.concatenate(values).astype(np.float64),
        product_ids=ids,
        confusion_images=images,
        fingerprint=test_fingerprint(ids, all_labels),
        seconds=time.perf_counter() - start,
    )
