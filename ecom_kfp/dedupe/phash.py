"""Vectorised 64-bit DCT perceptual hash (pHash) and Hamming distances.

The classic pHash (``imagehash.phash``) resizes a grayscale image to 32x32 with a Lanczos filter,
takes a 2-D DCT, keeps the 8x8 lowest frequencies and sets one bit per coefficient above their
median. Resize and the 8 lowest DCT rows are both linear maps, so they fold into one small matrix
per input size: ``low = M_h @ Y @ M_w.T`` with ``M_n = DCT_8x32 @ LANCZOS_32xn``. Images of one size
are hashed as a batch with two matrix products instead of a resize plus two FFTs each.
"""

from __future__ import annotations

import functools

import numpy as np

from ecom_kfp.dedupe import separable

#: pHash geometry shared with ``imagehash.phash`` (hash_size=8, highfreq_factor=4).
HASH_SIDE = 8
RESIZED_SIDE = 32
#: Side of the 256-bit pHash that verifies candidate matches of the 64-bit one.
VERIFY_SIDE = 16
LANCZOS_SUPPORT = 3.0


def _lanczos(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < LANCZOS_SUPPORT, np.sinc(x) * np.sinc(x / LANCZOS_SUPPORT), 0.0)


@functools.lru_cache(maxsize=256)
def lanczos_resize_matrix(in_size: int, out_size: int = RESIZED_SIDE) -> np.ndarray:
    """Row-stochastic ``(out_size, in_size)`` matrix of Pillow's antialiased Lanczos resize.

    Mirrors Pillow's ``precompute_coeffs``: the kernel is stretched by the downscale factor so a
    shrink averages every input pixel, and each output row's weights sum to one.
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = LANCZOS_SUPPORT * filter_scale
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    for out_px in range(out_size):
        center = (out_px + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = np.arange(lo, hi)
        weights = _lanczos((taps - center + 0.5) / filter_scale)
        matrix[out_px, lo:hi] = weights / weights.sum()
    return matrix


@functools.lru_cache(maxsize=4)
def _dct_rows(side: int) -> np.ndarray:
    """The ``side`` lowest rows of the (unnormalised) DCT-II of length ``RESIZED_SIDE``."""
    k = np.arange(side)[:, None]
    n = np.arange(RESIZED_SIDE)[None, :]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * RESIZED_SIDE))


@functools.lru_cache(maxsize=256)
def lowfreq_projection(in_size: int, side: int = HASH_SIDE) -> np.ndarray:
    """``(side, in_size)`` float32 matrix: Lanczos resize to 32, then the ``side`` lowest DCT rows."""
    return (_dct_rows(side) @ lanczos_resize_matrix(in_size)).astype(np.float32)


def low_frequency_map(height: int, width: int, side: int = HASH_SIDE,
                      mix: np.ndarray | None = None) -> separable.SeparableMap:
    """The map to the ``side x side`` lowest DCT coefficients of an image's 32x32 resize.

    The ``s x s`` top-left block of a larger ``side`` is the same as asking for ``s`` directly, so one
    map serves the 64-bit hash and its 256-bit check.

    Args:
        height: Image height.
        width: Image width.
        side: Low-frequency block side; 8 is the classic 64-bit pHash.
        mix: ``(1, channels)`` weights that turn the channels into the luma the hash looks at
            (``None`` for one channel of luma already).
    """
    return separable.SeparableMap(lowfreq_projection(height, side), lowfreq_projection(width, side), mix)


def hash_words(low: np.ndarray) -> np.ndarray:
    """One bit per coefficient above its image's median, ``(batch, side * side // 64)`` uint64.

    The first word's bit 63 is coefficient (0, 0), row-major like ``imagehash``.

    Args:
        low: ``(batch, side, side)`` low-frequency coefficients.
    """
    batch, side, _ = low.shape
    words = side * side // 64
    if batch == 0:
        return np.zeros((0, words), dtype=np.uint64)
    flat = low.reshape(batch, side * side)
    half = side * side // 2
    middle = np.partition(flat, (half - 1, half), axis=1)  # the median without np.median's checks
    bits = flat > (middle[:, half - 1:half] + middle[:, half:half + 1]) / 2
    return np.packbits(bits, axis=1, bitorder="big").view(">u8").astype(np.uint64).reshape(batch, words)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance between two uint64 arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def hamming_words(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance between rows of multi-word hashes ``(n, words)``."""
    return hamming(a, b).sum(axis=-1)
