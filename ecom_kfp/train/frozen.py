"""``--frozen-backbone``: the backbone's image features computed once per product, not once per epoch.

A frozen backbone gives every image the same features in every epoch, so running it each epoch is
wasted work (on one myntra-dev fold, 18 epochs at 224 px took 11 minutes on 2 CPU cores with
EfficientNet-Lite0 fine-tuned, 1.6 with it frozen this way). Instead each rank runs the backbone
once, in inference mode, over its own share of the splits training reads (and of ``val``), keeps
``(features, title inputs, labels[, weight])`` in memory, and trains
:func:`~ecom_kfp.train.model.feature_classifier`, the part of the model after the backbone, whose
layers are the full model's own. The full model, backbone inside, is what gets checkpointed,
evaluated and exported, so serving, evaluate and predict see no difference.

With ``--frozen-backbone-until LAYER`` the backbone is cut at one of its own layers instead: the
part up to ``LAYER`` runs once per product, its feature maps are kept, and the backbone's layers
after it are fine-tuned in every epoch with the rest (the cut and the sharing are
:func:`~ecom_kfp.train.model.feature_classifier`'s). Deep layers adapt to the catalog's pictures
while the early ones, which ~4,000 training pictures would only overfit, keep ImageNet's.

Memory: one row holds the features (1,280 float32 = 5 KB for EfficientNet-Lite0) and the title
ids (~1 KB with the default 32 pieces, 32 word hashes and 192 character n-grams), ~6 KB per
product: 0.3 GB for a 50,000-product catalog, ~6 GB for 1M products, split between the ranks
(each holds its own shard). Feature maps are kept in float16: Lite0's ``block7_add`` at 224 px is
14 x 14 x 80 = 31 KB per product, 1.6 GB for 50,000 products. Beyond what the hosts hold,
fine-tune with ``--freeze-backbone-epochs``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ecom_kfp.contracts import serving
from ecom_kfp.train.data import DatasetError, PipelineOptions, TrainingData, make_dataset
from ecom_kfp.train.model import BACKBONE_LAYER, IMAGE_FEATURES_INPUT, backbone_front
from ecom_kfp.train.text import TitleTokenizer


@dataclass(frozen=True)
class FeatureTable:
    """One rank's products as the feature classifier reads them, one row per product.

    Attributes:
        inputs: :data:`~ecom_kfp.train.model.IMAGE_FEATURES_INPUT` and the title inputs.
        targets: The label of each head (``level_k``, and the branch heads' ``image_level_k``, ``title_level_k``).
        weights: Each product's sample weight (``--business-value-weights``), else None.
        seconds: Wall time of the backbone pass, reading and decoding included.
    """

    inputs: dict[str, tf.Tensor]
    targets: dict[str, tf.Tensor]
    weights: tf.Tensor | None
    seconds: float

    def __len__(self) -> int:
        return int(self.inputs[IMAGE_FEATURES_INPUT].shape[0])


def extract_features(model, data: TrainingData, splits: Sequence[str], tokenizer: TitleTokenizer,
                     options: PipelineOptions, cut: str = "") -> FeatureTable:
    """Run ``model``'s backbone once over this rank's share of ``splits`` (in batches, inference mode).

    Args:
        model: A classifier from :func:`~ecom_kfp.train.model.build_classifier`; only its backbone runs.
        options: How the training pipeline reads (batch size, image size, rank, world, weights,
            auxiliary heads); the splits are read once and in order whatever its ``training``.
        cut: A backbone layer (``--frozen-backbone-until``): its output is kept, in float16,
            instead of the backbone's.

    Raises:
        DatasetError: this rank got no products (fewer records than ranks).
    """
    started = time.perf_counter()
    backbone = model.get_layer(BACKBONE_LAYER)
    front = backbone_front(backbone, cut) if cut else backbone
    kept = tf.float16 if cut else tf.float32
    image_dtype = model.input[serving.MODEL_IMAGE_INPUT].dtype

    read = dataclasses.replace(options, training=False, read_once=True)
    datasets = [make_dataset(data, split, tokenizer, read) for split in splits]
    images = datasets[0].element_spec[0][serving.MODEL_IMAGE_INPUT]

    # One trace for every batch size (the last batch of a split is short).
    @tf.function(input_signature=[tf.TensorSpec([None, *images.shape[1:]], images.dtype)])
    def features_of(batch: tf.Tensor) -> tf.Tensor:
        # The full model casts its uint8 image input the same way before the backbone sees it.
        return tf.cast(front(tf.cast(batch, image_dtype), training=False), kept)

    inputs: dict[str, list[np.ndarray]] = {}
    targets: dict[str, list[np.ndarray]] = {}
    weights: list[np.ndarray] = []
    for ds in datasets:
        for batch in ds:
            x, y = batch[0], batch[1]
            inputs.setdefault(IMAGE_FEATURES_INPUT, []).append(features_of(x[serving.MODEL_IMAGE_INPUT]).numpy())
            for key, value in x.items():
                if key != serving.MODEL_IMAGE_INPUT:
                    inputs.setdefault(key, []).append(value.numpy())
            for key, value in y.items():
                targets.setdefault(key, []).append(value.numpy())
            if options.business_value_weights:
                weights.append(batch[2].numpy())
    if not inputs:
        raise DatasetError(f"--data {data.layout.root}: rank {options.rank} of {options.world} got no "
                           f"{' + '.join(splits)} records to compute backbone features of")
    return FeatureTable({k: tf.constant(np.concatenate(v)) for k, v in inputs.items()},
                        {k: tf.constant(np.concatenate(v)) for k, v in targets.items()},
                        tf.constant(np.concatenate(weights)) if weights else None,
                        time.perf_counter() - started)


def features_dataset(table: FeatureTable, batch_size: int, training: bool, world: int = 1,
                     seed: int = 0) -> tf.data.Dataset:
    """Batches of ``(inputs, targets[, weight])`` of ``table``, repeated like :func:`~ecom_kfp.train.data.make_dataset`.

    Training shuffles every epoch and repeats forever, full batches only: the caller fixes the
    steps per epoch, the same on every rank, so ranks whose shards differ in size still step in
    lock-step. Evaluation reads the table once in one process and repeats it with several ranks.
    Row indices are shuffled and gathered rather than the rows themselves, so no shuffle buffer
    holds a second copy of the features.
    """
    rows = (table.inputs, table.targets) if table.weights is None else (table.inputs, table.targets, table.weights)
    ds = tf.data.Dataset.range(len(table))
    if training:
        ds = ds.shuffle(len(table), seed=seed, reshuffle_each_iteration=True)
    if training or world > 1:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.map(lambda index: tf.nest.map_structure(lambda column: _widened(tf.gather(column, index)), rows),
                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _widened(batch: tf.Tensor) -> tf.Tensor:
    """Feature maps are held in float16 to halve their memory; the model reads float32."""
    return tf.cast(batch, tf.float32) if batch.dtype == tf.float16 else batch
