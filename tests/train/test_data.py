"""The training input pipeline: decoded images as the model gets them, several splits read as one
(``--fit-on-val``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.contracts.serving import MODEL_TITLE_INPUT as TITLE_INPUT
from ecom_kfp.train.data import PipelineOptions, TrainingData, make_dataset
from ecom_kfp.train.text import TitleTokenizer
from tests.train.helpers import SPLIT_SIZES

BATCH = 8


def _titles(ds, batches: int | None = None) -> list[tuple[int, ...]]:
    """Token-id tuples of the records in the first ``batches`` batches (all when None)."""
    return [tuple(row) for x, _ in itertools.islice(ds, batches) for row in x[TITLE_INPUT].numpy().tolist()]


@pytest.fixture(scope="module")
def reading(tiny_dataset: DatasetLayout):
    data = TrainingData.load(tiny_dataset.root)
    tokenizer = TitleTokenizer(data.layout.spm_model, max_tokens=16)
    held_out = PipelineOptions(batch_size=BATCH, image_size=32, training=False)
    train, val = (set(_titles(make_dataset(data, split, tokenizer, held_out))) for split in ("train", "val"))
    return data, tokenizer, train, val - train  # titles only the validation split has


def test_train_and_val_are_drawn_in_proportion_to_their_sizes(reading) -> None:
    data, tokenizer, train, val_only = reading
    options = PipelineOptions(batch_size=BATCH, image_size=32, training=True)
    drawn = _titles(make_dataset(data, ("train", "val"), tokenizer, options), batches=60)
    assert set(drawn) <= train | val_only
    share = sum(title in val_only for title in drawn) / len(drawn)
    # Records are drawn in proportion to split size; val-only titles are some of val's records.
    val_share = SPLIT_SIZES["val"] / (SPLIT_SIZES["train"] + SPLIT_SIZES["val"])
    assert 0.05 < share < val_share + 0.08, share


def test_every_rank_reads_both_splits(reading) -> None:
    """train has 2 shards (one per rank), val 1 (split by record): no rank trains on one split alone."""
    data, tokenizer, train, val_only = reading
    for rank in (0, 1):
        options = PipelineOptions(batch_size=BATCH, image_size=32, training=True, rank=rank, world=2)
        drawn = set(_titles(make_dataset(data, ("train", "val"), tokenizer, options), batches=30))
        assert drawn & val_only and drawn & train, rank


def test_only_training_reads_several_splits(reading) -> None:
    data, tokenizer, _, _ = reading
    with pytest.raises(ValueError, match="only training reads several splits"):
        make_dataset(data, ("train", "val"), tokenizer, PipelineOptions(batch_size=BATCH, image_size=32, training=False))


@pytest.mark.parametrize("image_size", [40, 32])
def test_images_arrive_decoded_as_decode_and_resize_gives_them(reading, image_size: int) -> None:
    """At the stored size (40 px here) the pipeline hands over decode_jpeg's uint8 pixels, which
    equal the serving signature's float decoding; at another size it resizes the same way."""
    import tensorflow as tf

    from ecom_kfp.contracts import features
    from ecom_kfp.contracts.serving import MODEL_IMAGE_INPUT

    data, tokenizer, _, _ = reading
    options = PipelineOptions(batch_size=BATCH, image_size=image_size, training=False)
    x, _ = next(iter(make_dataset(data, "test", tokenizer, options)))
    images = x[MODEL_IMAGE_INPUT]
    assert images.dtype == (tf.uint8 if image_size == data.spec.image_size else tf.float32)
    assert images.shape == (BATCH, image_size, image_size, 3)
    record = next(iter(tf.data.TFRecordDataset(data.shards("test"), compression_type="GZIP").batch(BATCH)))
    jpegs = data.spec.parse(record)[features.IMAGE]
    expected = tf.stack([features.decode_and_resize(jpeg, image_size, data.spec.resize_mode) for jpeg in jpegs])
    np.testing.assert_allclose(tf.cast(images, tf.float32).numpy(), expected.numpy(), atol=1e-3)


def test_deterministic_training_reads_the_same_order_twice(reading) -> None:
    """``--deterministic`` keeps parallel reads and maps in input order while training, so two
    pipelines with one seed hand over the same batches (unordered ones follow the machine's load)."""
    data, tokenizer, _, _ = reading
    options = PipelineOptions(batch_size=BATCH, image_size=32, training=True, seed=3, deterministic=True)
    assert options.in_order and not PipelineOptions(batch_size=BATCH, image_size=32, training=True).in_order
    first, second = (_titles(make_dataset(data, ("train", "val"), tokenizer, options), batches=40) for _ in range(2))
    assert first == second
    other_seed = PipelineOptions(batch_size=BATCH, image_size=32, training=True, seed=4, deterministic=True)
    assert _titles(make_dataset(data, ("train", "val"), tokenizer, other_seed), batches=40) != first
