"""Batch inference over a split through the exported serving signature.

The model is called exactly as a server would call it (raw image bytes + title strings through
:data:`ecom_kfp.contracts.serving.SIGNATURE`), so what is measured is what will be served.
The full softmax of every level is kept (``n x C`` float32 per level): temperature scaling and
the label-error search need it. Images are not kept; :func:`read_images` fetches the few the
report shows.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts import features, serving
from ecom_kfp.evaluate.inputs import TFRECORD_SUFFIX, EvaluationInputs

#: Salt of the test fingerprint: bump it when the metrics of the same examples change meaning, so
#: registry tags computed under the old meaning are not compared with new figures (v2: examples of
#: classes folded into ``other`` count as errors).
METRICS_VERSION = "metrics-v2"


@dataclass
class SplitScores:
    """The model's outputs on one split and what the records say about each example.

    Attributes:
        split: ``test`` or ``val``.
        probabilities: Per level, level 1 first, the softmax ``[n, C_k]`` (float32).
        labels: Recorded class ids ``[n, num_levels]``.
        business_values: The records' ``business_value`` feature ``[n]``.
        product_ids: Catalog ids ``[n]``.
        titles: Titles ``[n]``.
        category_paths: The category path the labels were computed from (``" > "``-joined; empty
            when the records do not carry it) ``[n]``.
        seconds: Wall-clock time of read + inference.
    """

    split: str
    probabilities: list[np.ndarray]
    labels: np.ndarray
    business_values: np.ndarray
    product_ids: list[str]
    titles: list[str]
    category_paths: list[str]
    seconds: float = 0.0

    @property
    def examples(self) -> int:
        return len(self.product_ids)

    @property
    def fingerprint(self) -> str:
        """Order-independent hash of (product id, labels): equal fingerprints, same examples and labels."""
        return test_fingerprint(self.product_ids, self.labels)


def test_fingerprint(product_ids: list[str], labels: np.ndarray) -> str:
    """Hash of :data:`METRICS_VERSION` and the sorted ``product_id:label,label,...`` lines."""
    lines = sorted(f"{pid}:{','.join(map(str, row))}" for pid, row in zip(product_ids, labels.tolist(), strict=True))
    return hashlib.sha256("\n".join([METRICS_VERSION, *lines]).encode("utf-8")).hexdigest()


def _check_labels(batch_labels: np.ndarray, product_ids: np.ndarray, inputs: EvaluationInputs, split: str) -> None:
    for k, vocabulary in enumerate(inputs.vocabularies):
        bad = (batch_labels[:, k] < 0) | (batch_labels[:, k] >= len(vocabulary))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"--data {inputs.dataset.root}: {split} record {product_ids[i].decode('utf-8', 'replace')!r} has "
                f"{features.label_key(k + 1)}={int(batch_labels[i, k])}, but "
                f"level {k + 1} of --model {inputs.model_uri} has only {len(vocabulary)} classes")


def _records(inputs: EvaluationInputs, shards: list[str], batch_size: int):
    import tensorflow as tf

    return (tf.data.TFRecordDataset(shards, compression_type="GZIP")
            .batch(batch_size).map(inputs.spec.parse, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def split_shards(inputs: EvaluationInputs, split: str) -> list[str]:
    """Shards of ``split`` (empty when the dataset has none)."""
    if split == "test":
        return inputs.test_shards
    directory = inputs.dataset.split_dir(split)
    return uri.list_files(directory, suffix=TFRECORD_SUFFIX) if uri.exists(directory) else []


def score_split(inputs: EvaluationInputs, split: str = "test", batch_size: int = 64,
                limit: int | None = None) -> SplitScores:
    """Run the SavedModel's serving signature over the records of ``split``.

    Args:
        inputs: The checked model and dataset.
        split: ``test`` or ``val``.
        batch_size: Inference batch size.
        limit: Stop after about this many records (whole batches; None = all). The build writes
            records in a pseudo-random order, so the first ones are a fair sample.

    Raises:
        ValueError: a label id outside its vocabulary, or a model output of the wrong width.
    """
    start = time.perf_counter()
    shards = split_shards(inputs, split)
    per_level: list[list[np.ndarray]] = [[] for _ in inputs.vocabularies]
    labels, values, ids, titles, paths = [], [], [], [], []
    if shards:
        with uri.local_copy(inputs.model.saved_model) as saved_model, \
                uri.local_copy(inputs.dataset.split_dir(split)) as split_dir:
            signature = serving.load_signature(saved_model)
            local = uri.list_files(split_dir, suffix=TFRECORD_SUFFIX)
            for batch in tqdm(_records(inputs, local, batch_size), desc=f"evaluate {split}", unit="batch",
                              leave=False):
                batch_labels = np.stack([batch[key].numpy() for key in inputs.spec.label_keys], axis=1)
                batch_ids = batch[features.PRODUCT_ID].numpy()
                _check_labels(batch_labels, batch_ids, inputs, split)
                outputs = signature(**{serving.INPUT_IMAGE: batch[features.IMAGE],
                                       serving.INPUT_TITLE: batch[features.TITLE]})
                for k, vocabulary in enumerate(inputs.vocabularies):
                    probabilities = outputs[serving.output_key(k + 1)].numpy()
                    if probabilities.shape[1] != len(vocabulary):
                        raise ValueError(f"--model {inputs.model_uri}: output {serving.output_key(k + 1)} has "
                                         f"{probabilities.shape[1]} classes, labels have {len(vocabulary)}")
                    per_level[k].append(probabilities.astype(np.float32))
                labels.append(batch_labels)
                values.append(batch[features.BUSINESS_VALUE].numpy())
                ids.extend(pid.decode("utf-8") for pid in batch_ids)
                titles.extend(t.decode("utf-8") for t in batch[features.TITLE].numpy())
                paths.extend(p.decode("utf-8") for p in batch[features.CATEGORY_PATH].numpy())
                if limit is not None and len(ids) >= limit:
                    break
    num_levels = len(inputs.vocabularies)
    return SplitScores(
        split=split,
        probabilities=[np.concatenate(parts) if parts else np.zeros((0, len(v)), np.float32)
                       for parts, v in zip(per_level, inputs.vocabularies, strict=True)],
        labels=np.concatenate(labels) if labels else np.zeros((0, num_levels), np.int64),
        business_values=np.concatenate(values).astype(np.float64) if values else np.zeros(0),
        product_ids=ids, titles=titles, category_paths=paths, seconds=time.perf_counter() - start)


def read_images(inputs: EvaluationInputs, product_ids: Collection[str], batch_size: int = 256) -> dict[str, bytes]:
    """The stored JPEG of each of ``product_ids`` in the test split (a second read, no inference)."""
    wanted = set(product_ids)
    found: dict[str, bytes] = {}
    if not wanted:
        return found
    with uri.local_copy(inputs.dataset.split_dir("test")) as test_dir:
        for batch in _records(inputs, uri.list_files(test_dir, suffix=TFRECORD_SUFFIX), batch_size):
            for pid, image in zip(batch[features.PRODUCT_ID].numpy(), batch[features.IMAGE].numpy(), strict=True):
                key = pid.decode("utf-8")
                if key in wanted:
                    found[key] = image
            if len(found) == len(wanted):
                break
    return found
