"""The serving signature of a trained model (``saved_model/``), shared by train, evaluate and push.

``saved_model/`` exports one signature, :data:`SIGNATURE`, that takes a batch of raw inputs exactly
as a shop has them and returns one probability vector per taxonomy level:

- inputs: ``image_bytes`` (``tf.string [None]``: JPEG/PNG bytes of any size; resized in-graph with
  :func:`ecom_kfp.contracts.features.decode_and_resize`) and ``title`` (``tf.string [None]``;
  tokenised in-graph with the dataset's SentencePiece model through tensorflow-text).
- outputs: ``level_<k>`` (``tf.float32 [None, C_k]``, softmax over ``labels/level_<k>.txt``) for
  k = 1..num_levels.
"""

from __future__ import annotations

SIGNATURE = "serving_default"
INPUT_IMAGE = "image_bytes"
INPUT_TITLE = "title"


def output_key(level: int) -> str:
    """Output name of the probabilities at ``level`` (1-based)."""
    return f"level_{level}"
