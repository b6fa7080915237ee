"""The serving signature of a trained model (``saved_model/``), shared by train, evaluate and push.

``saved_model/`` exports one signature, :data:`SIGNATURE`, that takes a batch of raw inputs exactly
as a shop has them and returns one probability vector per taxonomy level:

- inputs: ``image_bytes`` (``tf.string [None]``: JPEG/PNG bytes of any size; resized in-graph with
  :func:`ecom_kfp.contracts.features.decode_and_resize`) and ``title`` (``tf.string [None]``;
  tokenised in-graph with the dataset's SentencePiece model through tensorflow-text).
- outputs: ``level_<k>`` (``tf.float32 [None, C_k]``, softmax over ``labels/level_<k>.txt``) for
  k = 1..num_levels.

Inside it sits the Keras model (``model.keras``), whose own inputs and outputs are named here too,
so the input pipeline, the tokenizer, the model and the export agree: :data:`MODEL_IMAGE_INPUT`
(``[None, S, S, 3]``, 0..255, uint8 or float), :data:`MODEL_TITLE_INPUT` and
:data:`MODEL_TITLE_WORDS_INPUT` (int32 ``[None, max_title_tokens]``, 0 = padding), and one output
per level named :func:`model_output` (float32 probabilities); a fused model in training also has
auxiliary heads named :func:`model_image_head`, which are never served.
"""

from __future__ import annotations

SIGNATURE = "serving_default"
INPUT_IMAGE = "image_bytes"
INPUT_TITLE = "title"


def output_key(level: int) -> str:
    """Output name of the probabilities at ``level`` (1-based)."""
    return f"level_{level}"


#: Keras model input names (the model's, not the serving signature's).
MODEL_IMAGE_INPUT = "image"
MODEL_TITLE_INPUT = "title_tokens"
MODEL_TITLE_WORDS_INPUT = "title_words"


def model_output(level: int) -> str:
    """Name of the Keras model's head (and the label key in training batches) at ``level`` (1-based)."""
    return f"level_{level}"


def model_image_head(level: int) -> str:
    """Name of a fused model's auxiliary image-only head at ``level`` (training only, never served)."""
    return f"image_{model_output(level)}"


def load_signature(saved_model_dir: str):
    """Load a local ``saved_model/`` and return its :data:`SIGNATURE` callable.

    tensorflow-text must be imported before loading: it registers the SentencePiece ops the
    in-graph tokenizer uses, and without it loading fails with "Op type not registered".
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers SentencepieceOp)

    loaded = tf.saved_model.load(saved_model_dir)
    signature = loaded.signatures[SIGNATURE]
    signature._ecom_kfp_owner = loaded  # keep the loaded object (and its variables) alive
    return signature
