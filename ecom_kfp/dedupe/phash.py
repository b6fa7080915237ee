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

#: pHash geometry shared with ``imagehash.phash`` (hash_size=8, highfreq_factor=4).
HASH_SIDE = 8
RESIZED_SIDE = 32
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


@functools.lru_cache(maxsize=1)
def _dct_rows() -> np.ndarray:
    """The ``HASH_SIDE`` lowest rows of the (unnormalised) DCT-II of length ``RESIZED_SIDE``."""
    k = np.arange(HASH_SIDE)[:, None]
    n = np.arange(RESIZED_SIDE)[None, :]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * RESIZED_SIDE))


@functools.lru_cache(maxsize=256)
def lowfreq_projection(in_size: int) -> np.ndarray:
    """``(8, in_size)`` float32 matrix: Lanczos resize to 32 followed by the 8 lowest DCT rows."""
    return (_dct_rows() @ lanczos_resize_matrix(in_size)).astype(np.float32)


def phash_batch(gray: np.ndarray) -> np.ndarray:
    """pHash of a batch of same-size grayscale images.

    Args:
        gray: ``(batch, height, width)`` array of luma values (any numeric dtype).

    Returns:
        ``(batch,)`` uint64 hashes; bit 63 is coefficient (0, 0), row-major like ``imagehash``.
    """
    if gray.ndim != 3:
        raise ValueError(f"expected (batch, height, width), got shape {gray.shape}")
    batch, height, width = gray.shape
    if batch == 0:
        return np.zeros(0, dtype=np.uint64)
    pixels = gray.astype(np.float32, copy=False)
    low = lowfreq_projection(height) @ pixels @ lowfreq_projection(width).T  # (batch, 8, 8)
    flat = low.reshape(batch, HASH_SIDE * HASH_SIDE)
    bits = flat > np.median(flat, axis=1, keepdims=True)
    return np.packbits(bits, axis=1, bitorder="big").view(">u8").astype(np.uint64).ravel()


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance between two uint64 arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)
