"""Training-image augmentation as batched ops inside the train step, on the accelerator.

Per-example augmentation in tf.data cost the CPU side more than reading and decoding the images
(``benchmarks/bench_input_pipeline.py``): a fast GPU would wait on it. Here a whole batch is
flipped and shifted with a few tensor ops (a select, a pad, two batched gathers) where the model
runs, so the input pipeline only reads, decodes and batches. The ops carry no variables and are
stateless-random, keyed by (seed, step): nothing of them is saved, exported or served, and XLA
compiles them.

Product photos are roughly centred on a white background, so the shift pads with white
(:data:`ecom_kfp.contracts.features.PAD_VALUE`).
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from ecom_kfp.contracts import features

#: Largest shift as a share of the image side, each way (what keras-cv's RandomTranslation did).
MAX_SHIFT = 0.08


@dataclass(frozen=True)
class FlipShift:
    """Random horizontal flip and integer shift of up to ``max_shift`` x side in each direction.

    Attributes:
        seed: Per-rank seed; with the step it keys every random draw.
        max_shift: Largest shift as a share of the side.
    """

    seed: int
    max_shift: float = MAX_SHIFT

    def __call__(self, images: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """Augment ``images`` ``[B, H, W, C]`` (any dtype) for training step ``step``."""
        shape = tf.shape(images)
        batch, height, width = shape[0], images.shape[1], images.shape[2]
        key = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        flip = tf.random.stateless_uniform([batch], seed=key) < 0.5
        images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
        margin = int(round(self.max_shift * max(height, width)))
        if margin == 0:
            return images
        fill = tf.cast(features.PAD_VALUE, images.dtype)
        padded = tf.pad(images, [[0, 0], [margin, margin], [margin, margin], [0, 0]], constant_values=fill)
        offsets = tf.random.stateless_uniform([2, batch], seed=key + 1, maxval=2 * margin + 1, dtype=tf.int32)
        rows = offsets[0][:, None] + tf.range(height)[None, :]
        columns = offsets[1][:, None] + tf.range(width)[None, :]
        shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
        return tf.gather(shifted, columns, axis=2, batch_dims=1)
