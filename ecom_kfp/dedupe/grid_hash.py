"""e-CLIP's coarse colour-grid hash: equal keys mean the same picture at the same size.

NAVER's e-CLIP catalog cleaning splits an image into a 5x5 grid, quantises each cell's mean colour
to one digit per channel and adds the image size; products whose keys are equal are duplicates.
It catches re-encodes that change the bytes (so the SHA-256 differs) but not the picture.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from ecom_kfp.dedupe import separable

DEFAULT_GRID = 5
#: One decimal digit per channel: 256 levels -> 0..9.
LEVELS = 10


@functools.lru_cache(maxsize=256)
def cell_average_matrix(in_size: int, cells: int) -> np.ndarray:
    """``(cells, in_size)`` matrix averaging pixels into equal cells (fractional pixel overlap).

    Works for any size, even images smaller than the grid.
    """
    edges = np.arange(in_size + 1, dtype=np.float64)
    bounds = np.linspace(0.0, in_size, cells + 1)
    lo = np.maximum(edges[None, :-1], bounds[:-1, None])
    hi = np.minimum(edges[None, 1:], bounds[1:, None])
    overlap = np.clip(hi - lo, 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def cell_mean_map(height: int, width: int, cells: int = DEFAULT_GRID) -> separable.SeparableMap:
    """The map to each grid cell's mean, per channel."""
    return separable.SeparableMap(cell_average_matrix(height, cells), cell_average_matrix(width, cells))


def digits_of_means(means: np.ndarray) -> np.ndarray:
    """Quantise ``(batch, 3, cells, cells)`` RGB cell means to ``(batch, cells * cells * 3)`` uint8 digits.

    Digits are in ``0..LEVELS-1``, row-major cells, RGB order.
    """
    batch, _, cells, _ = means.shape
    digits = np.minimum((means.transpose(0, 2, 3, 1) * LEVELS / 256.0).astype(np.uint8), LEVELS - 1)
    return digits.reshape(batch, cells * cells * 3)


def grid_key(digits: np.ndarray, width: int, height: int) -> int:
    """64-bit key of one image's grid digits plus its original size.

    The full key (75 digits and the size) is folded into 64 bits with BLAKE2b so the table stays
    compact; two different keys collide with probability 2**-64 per pair.
    """
    payload = digits.tobytes() + f"|{width}x{height}".encode()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big")


#: Cells that must differ from the grid's most common cell colour for the picture to say anything.
MIN_DETAIL_CELLS = 3


def has_detail(digits: np.ndarray, min_cells: int = MIN_DETAIL_CELLS) -> np.ndarray:
    """Whether each image's grid has at least ``min_cells`` cells unlike its dominant colour.

    A nearly blank picture (a small item on white, a placeholder) gives the same grid key and
    nearly the same pHash as every other such picture, so those rules would merge unrelated
    products; such images are matched by their bytes only.

    Args:
        digits: ``(n, cells * cells * 3)`` grid digits from :func:`digits_of_means`.
    """
    codes = digits.reshape(len(digits), digits.shape[1] // 3, 3).astype(np.int16) @ np.array([100, 10, 1], np.int16)
    codes = np.sort(codes, axis=1)
    # Longest run of equal codes in each sorted row = count of the dominant colour.
    same = codes[:, 1:] == codes[:, :-1]
    longest = np.ones(len(codes), dtype=np.int64)
    run = np.ones(len(codes), dtype=np.int64)
    for column in range(same.shape[1]):
        run = np.where(same[:, column], run + 1, 1)
        longest = np.maximum(longest, run)
    return codes.shape[1] - longest >= min_cells
