"""Export the serving SavedModel: raw image bytes + raw title -> per-level probabilities.

Preprocessing lives in the graph (:mod:`ecom_kfp.contracts.serving`): images are decoded and
resized with :func:`~ecom_kfp.contracts.features.decode_and_resize`, titles tokenised by the
dataset's SentencePiece model through tensorflow-text. A process loading it must
``import tensorflow_text`` first so the SentencePiece ops are registered.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ecom_kfp.contracts import features, serving
from ecom_kfp.train.text import TitleTokenizer


def export_serving(model: keras.Model, tokenizer: TitleTokenizer, image_size: int, resize_mode: str,
                   num_levels: int, path: str) -> None:
    """Write ``model`` with in-graph preprocessing as a SavedModel at local ``path``."""

    def decode(image_bytes: tf.Tensor) -> tf.Tensor:
        return features.decode_and_resize(image_bytes, image_size, resize_mode)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving.INPUT_IMAGE),
                                  tf.TensorSpec([None], tf.string, name=serving.INPUT_TITLE)])
    def serve(image_bytes: tf.Tensor, title: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32))
        probabilities = model({serving.MODEL_IMAGE_INPUT: images, **tokenizer.model_inputs(title)}, training=False)
        return {serving.output_key(k): probabilities[serving.model_output(k)] for k in range(1, num_levels + 1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer.sentencepiece)
    archive.add_endpoint(serving.SIGNATURE, serve)
    archive.write_out(path, verbose=False)
