"""Rule 5 (optional): near-duplicate images by cosine similarity of image embeddings.

Any Keras model (``.keras`` file) or SavedModel directory that maps a float32 image batch
``[N, S, S, 3]`` with values in 0..255 to vectors ``[N, D]`` can serve; ``S`` is read from the
model. Images are decoded (at reduced size with Pillow's JPEG ``draft``) and brought to ``S x S``
with :func:`ecom_kfp.contracts.features.resize_pil`, the preprocessing the classifier uses.
Vectors are L2-normalised, so cosine similarity is a dot product.

The search is exact and blocked: the normalised vectors are compared tile by tile
(``block x block`` matrix products, each pair once). That is ``n**2 / 2`` dot products of length
``D``, i.e. ``O(n**2 / block**2)`` BLAS calls of ``O(block**2 * D)`` work with ``O(block**2)``
memory: seconds for 10^4-10^5 products, tens of minutes at 10^6 (``D`` = 128, 2 cores), and
not feasible at 10^7. Use it on catalogs (or per-category shards) up to about a million
products; beyond that an approximate nearest-neighbour index belongs in front of it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts.digests import private_copy_of, verify_pinned
from ecom_kfp.contracts.features import resize_pil
from ecom_kfp.dedupe.image_hashes import ImageJob, batched, read_first

FLAG = "--embedding-model"
#: Tile side of the blocked search: a 2048 x 2048 float32 tile is 16 MiB.
SEARCH_BLOCK = 2048


@dataclass(frozen=True)
class EmbeddingModel:
    """A loaded embedding model: ``embed(batch [N, S, S, 3] float32 0..255) -> [N, D]``."""

    embed: Callable[[np.ndarray], np.ndarray]
    image_size: int


def _square_size(shape: Sequence[int | None], model_uri: str) -> int:
    """``S`` of an input shape ``[N, S, S, 3]``, or a ValueError naming the flag."""
    shape = tuple(shape)
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(f"{FLAG}={model_uri!r}: model input must be [batch, S, S, 3] with a fixed S, "
                         f"got {list(shape)}")
    return int(shape[1])


def _load_keras(path: str, model_uri: str) -> EmbeddingModel:
    import keras

    model = keras.saving.load_model(path, compile=False)
    size = _square_size(model.input_shape, model_uri)
    return EmbeddingModel(embed=lambda batch: np.asarray(model(batch, training=False)), image_size=size)


def _load_saved_model(path: str, model_uri: str) -> EmbeddingModel:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"{FLAG}={model_uri!r}: SavedModel has no serving_default signature")
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise ValueError(f"{FLAG}={model_uri!r}: serving_default must take one image input, "
                         f"takes {sorted(inputs)}")
    (name, spec), = inputs.items()
    size = _square_size(spec.shape.as_list(), model_uri)

    def embed(batch: np.ndarray) -> np.ndarray:
        outputs = signature(**{name: tf.constant(batch)})
        # Several outputs: take the first by name, which is deterministic across loads.
        return outputs[sorted(outputs)[0]].numpy()

    return EmbeddingModel(embed=embed, image_size=size)


def load_embedding_model(model_uri: str, sha256: str = "") -> EmbeddingModel:
    """Load a ``.keras`` file or a SavedModel directory, local or ``gs://``.

    A SavedModel runs its own graph when called, so with ``sha256`` (``--embedding-model-sha256``)
    a private local copy is checked, then loaded (:func:`~ecom_kfp.contracts.digests.private_copy_of`):
    the file's SHA-256, or a directory's :func:`~ecom_kfp.contracts.digests.content_digest`.

    Raises:
        FileNotFoundError: nothing at ``model_uri`` (the message names the flag).
        DigestError: the model is not the one ``sha256`` pins.
        ValueError: the model's input is not ``[N, S, S, 3]``.
    """
    try:
        with (private_copy_of(model_uri) if sha256 else uri.local_copy(model_uri)) as path:
            if sha256:
                verify_pinned(path, sha256, f"{FLAG}={model_uri!r} (--embedding-model-sha256)")
            if path.endswith(".keras"):
                return _load_keras(path, model_uri)
            return _load_saved_model(path, model_uri)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{FLAG}={model_uri!r}: {err}") from err


def load_for_embedding(data: bytes, size: int) -> np.ndarray:
    """``(size, size, 3)`` float32 pixels 0..255 of one encoded image."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (size, size))
        return np.asarray(resize_pil(image, size), dtype=np.float32)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero, so they match nothing)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32)


def embed_images(jobs: Iterable[ImageJob], model: EmbeddingModel, batch_size: int = 64,
                 progress: bool = True) -> np.ndarray:
    """L2-normalised embedding ``(n, D)`` of each job's image (``jobs`` consumed a batch at a time).

    The jobs are images the hashing pass already read and decoded, so reading them cannot fail
    for a reason that would not have made them rejects there.
    """
    parts = []
    for jobs_batch in tqdm(batched(jobs, batch_size), desc="embed images", unit="batch", disable=not progress):
        batch = np.stack([load_for_embedding(read_first(job.candidates), model.image_size) for job in jobs_batch])
        output = np.asarray(model.embed(batch), dtype=np.float32)
        if output.ndim != 2 or len(output) != len(batch):
            raise ValueError(f"{FLAG}: model must map [N, S, S, 3] to [N, D], got output shape {output.shape}")
        parts.append(output)
    return l2_normalise(np.concatenate(parts)) if parts else np.zeros((0, 0), dtype=np.float32)


def similar_pairs(vectors: np.ndarray, threshold: float, block: int = SEARCH_BLOCK,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of rows with cosine similarity ``>= threshold`` (exact, blocked; see module doc).

    Args:
        vectors: ``(n, D)`` L2-normalised rows.
        threshold: Minimum cosine similarity.
        block: Tile side.
        progress: Show a tqdm bar over row blocks.

    Returns:
        ``left``, ``right`` (``left < right``, sorted) and their similarities.
    """
    n = len(vectors)
    lefts, rights, sims = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    for row in tqdm(range(0, n, block), desc="embedding search", unit="block", disable=not progress):
        for col in range(row, n, block):
            tile = vectors[row:row + block] @ vectors[col:col + block].T
            i, j = np.nonzero(tile >= threshold)
            left, right = i + row, j + col
            upper = left < right  # the diagonal tile holds each pair twice and every item with itself
            lefts.append(left[upper])
            rights.append(right[upper])
            sims.append(tile[i[upper], j[upper]])
    left, right, sim = np.concatenate(lefts), np.concatenate(rights), np.concatenate(sims)
    order = np.lexsort((right, left))
    return left[order], right[order], sim[order]
