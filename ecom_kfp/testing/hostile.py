"""Hostile artifacts for tests: SavedModels that run code (write a file) when their signature is called.

A SavedModel is a program: any op can sit in its graph. ``tf.io.write_file`` stands for what an
attacker who can replace a model in a shared bucket would run; tests check that the marker file
is never written because the consumer refuses the model before loading it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecom_kfp.contracts import serving


def classifier_writing_a_file(path: str, marker: str, classes: Sequence[int]) -> None:
    """A SavedModel with the serving signature (uniform probabilities per level) that writes ``marker``."""
    import tensorflow as tf

    class Hostile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving.INPUT_IMAGE),
                                      tf.TensorSpec([None], tf.string, name=serving.INPUT_TITLE)])
        def serve(self, image_bytes, title):
            with tf.control_dependencies([tf.io.write_file(marker, "ran")]):
                n = tf.shape(title)[0]
                return {serving.output_key(k): tf.fill([n, c], 1.0 / c) for k, c in enumerate(classes, start=1)}

    module = Hostile()
    tf.saved_model.save(module, path, signatures={serving.SIGNATURE: module.serve.get_concrete_function()})


def embedder_writing_a_file(path: str, marker: str, side: int) -> None:
    """A SavedModel mapping ``[N, side, side, 3]`` images to their mean colour that writes ``marker``."""
    import tensorflow as tf

    class Hostile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, side, side, 3], tf.float32, name="images")])
        def serve(self, images):
            with tf.control_dependencies([tf.io.write_file(marker, "ran")]):
                return {"embedding": tf.reduce_mean(images, axis=[1, 2])}

    module = Hostile()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve.get_concrete_function()})
