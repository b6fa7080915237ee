"""Load a published SavedModel and run its serving signature before any pointer moves (TFX's InfraValidator idea).

Digests prove the bytes are the ones evaluated; this proves those bytes load and answer where
they will be served: each level's output is present, has one row per input and one column per
class of the published label file, and holds finite probabilities that sum to 1. The inputs are
a few small synthetic products of different sizes and colours, and titles of different shapes
(empty, mixed case, non-ASCII), as a shop would send them.
"""

from __future__ import annotations

import io

import numpy as np

from ecom_kfp import uri
from ecom_kfp.contracts import serving
from ecom_kfp.contracts.labels import load_all, vocabulary_uri
from ecom_kfp.push.serving import VerificationError

TITLES = ("Men Blue Slim Fit Jeans", "", "ROADSTER Women Black Handbag", "Kurta für Damen – Baumwolle")
SIZES = ((60, 80), (224, 224), (17, 300), (640, 480))
#: Tolerance on the sum of one row of probabilities (float32 softmax).
SUM_TOLERANCE = 1e-3


class InfraValidationError(VerificationError):
    """The published model does not load, or its serving signature does not answer as the contract says."""


def sample_inputs() -> tuple[list[bytes], list[str]]:
    """JPEGs of different sizes and colours, and titles of different shapes, one per example."""
    from PIL import Image

    images = []
    for index, size in enumerate(SIZES):
        buffer = io.BytesIO()
        Image.new("RGB", size, (60 * index, 255 - 50 * index, 90)).save(buffer, format="JPEG")
        images.append(buffer.getvalue())
    return images, list(TITLES)


def check_serving(saved_model_uri: str, labels_uri: str) -> int:
    """Load the SavedModel at ``saved_model_uri`` and check its signature's answers on :func:`sample_inputs`.

    Args:
        saved_model_uri: The SavedModel directory (local or ``gs://``).
        labels_uri: The label files published with it (their class counts are the expected widths).

    Returns:
        The number of examples it answered.

    Raises:
        InfraValidationError: naming what did not load or answer.
    """
    import tensorflow as tf

    images, titles = sample_inputs()
    present = set(uri.relative_files(labels_uri))  # level files, and thresholds.json beside them
    levels = sum(1 for level in range(1, len(present) + 1) if vocabulary_uri("", level) in present)
    widths = [len(v) for v in load_all(labels_uri, levels)]
    with uri.local_copy(saved_model_uri) as local:
        try:
            signature = serving.load_signature(local)
            outputs = signature(**{serving.INPUT_IMAGE: tf.constant(images), serving.INPUT_TITLE: tf.constant(titles)})
        except Exception as err:  # any load or run failure of the graph means "does not serve"
            raise InfraValidationError(f"{saved_model_uri}: the SavedModel does not load or its {serving.SIGNATURE} "
                                       f"signature fails on sample inputs ({type(err).__name__}: "
                                       f"{str(err).splitlines()[0] if str(err) else ''})") from err
    for level, width in enumerate(widths, start=1):
        key = serving.output_key(level)
        if key not in outputs:
            raise InfraValidationError(f"{saved_model_uri}: output {key!r} is missing (outputs: {sorted(outputs)})")
        values = outputs[key].numpy()
        if values.shape != (len(images), width):
            raise InfraValidationError(f"{saved_model_uri}: output {key!r} has shape {list(values.shape)}, expected "
                                       f"[{len(images)}, {width}] ({width} classes in the published labels)")
        sums = values.sum(axis=1)
        if not np.isfinite(values).all() or (values < 0).any() or np.abs(sums - 1).max() > SUM_TOLERANCE:
            raise InfraValidationError(f"{saved_model_uri}: output {key!r} is not a probability distribution per "
                                       f"example (row sums {np.round(sums, 4).tolist()})")
    return len(images)
