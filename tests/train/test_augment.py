"""Batched flip-and-shift augmentation, run in the train step on whole batches."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ecom_kfp.contracts.features import PAD_VALUE
from ecom_kfp.train.augment import FlipShift

SIZE = 50  # an 8 % shift is 4 px each way


def _dots(batch: int) -> np.ndarray:
    """White uint8 images with one black pixel each, left of centre."""
    images = np.full((batch, SIZE, SIZE, 3), PAD_VALUE, np.uint8)
    images[:, 20, 10] = 0
    return images


def test_each_image_is_flipped_or_not_and_shifted_within_the_margin() -> None:
    images = _dots(64)
    out = FlipShift(seed=1)(tf.constant(images), tf.constant(5)).numpy()
    assert out.dtype == np.uint8 and out.shape == images.shape
    columns = []
    for picture in out:
        rows, cols = np.nonzero(picture[..., 0] == 0)
        assert len(rows) == 1, "the dot is kept, nothing else is drawn"
        assert abs(rows[0] - 20) <= 4
        columns.append(cols[0])
    flipped = [c > SIZE // 2 for c in columns]
    assert 0 < sum(flipped) < 64, "some images are flipped, not all"
    for col, was_flipped in zip(columns, flipped, strict=True):
        assert abs(col - ((SIZE - 1 - 10) if was_flipped else 10)) <= 4
    assert len({(r, c) for r, c in zip(*np.nonzero(out[..., 0] == 0)[1:], strict=True)}) > 8, "shifts vary"


def test_draws_depend_on_seed_and_step_only() -> None:
    images = tf.constant(_dots(16))
    first = FlipShift(seed=3)(images, tf.constant(7)).numpy()
    np.testing.assert_array_equal(FlipShift(seed=3)(images, tf.constant(7)).numpy(), first)
    assert not np.array_equal(FlipShift(seed=3)(images, tf.constant(8)).numpy(), first)
    assert not np.array_equal(FlipShift(seed=4)(images, tf.constant(7)).numpy(), first)


def test_no_shift_only_flips() -> None:
    images = np.random.default_rng(0).integers(0, 255, (8, 6, 6, 3), dtype=np.uint8)
    out = FlipShift(seed=0, max_shift=0.0)(tf.constant(images), tf.constant(0)).numpy()
    for before, after in zip(images, out, strict=True):
        assert np.array_equal(after, before) or np.array_equal(after, before[:, ::-1])
