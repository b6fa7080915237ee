"""Separable linear maps (resizes, cell means, low DCT rows) on batches of same-size images.

Every image summary the hashes need is ``rows @ channel @ cols.T`` for each colour channel. The
batch is laid out with the image rows outermost, ``(height, batch, channels, width)``, so the row
map is one matrix product over all images and channels at once (instead of one small product per
image), and the column map runs on its much smaller result. Channels are planes (width innermost):
numpy copies interleaved 3- or 4-byte pixels several times slower than rows. The products are sized for one core:
hashing keeps BLAS to one thread per process (:func:`~ecom_kfp.dedupe.image_hashes.one_blas_thread`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def batch_layout(images: Sequence[np.ndarray]) -> np.ndarray:
    """Same-size ``(channels, height, width)`` images -> float32 ``(height, batch, channels, width)``."""
    stacked = np.stack(images)
    batch, channels, height, width = stacked.shape
    pixels = np.empty((height, batch, channels, width), dtype=np.float32)
    pixels[:] = stacked.transpose(2, 0, 1, 3)  # the transpose rides on the float conversion's copy
    return pixels


@dataclass(frozen=True)
class SeparableMap:
    """``rows @ channel @ cols.T``, optionally mixing the channels (a colour conversion) in between.

    Attributes:
        rows: ``(r, height)`` float32 map of the image rows.
        cols: ``(k, width)`` float32 map of the image columns.
        mix: Optional ``(m, channels)`` linear map of the channels, applied between the two maps
            where the data is smallest; linear maps commute, so the result is the same as mixing
            the pixels first.
    """

    rows: np.ndarray
    cols: np.ndarray
    mix: np.ndarray | None = None


def project_many(pixels: np.ndarray, maps: Sequence[SeparableMap]) -> list[np.ndarray]:
    """Apply several maps to every channel of a batch in :func:`batch_layout`.

    The row maps are stacked into one matrix product: BLAS packs the whole pixel matrix once per
    product, which on small images costs as much as the arithmetic, so one product serves all.

    Args:
        pixels: ``(height, batch, channels, width)`` float32.
        maps: The maps; each one's ``rows`` has ``height`` columns and its ``cols`` ``width``.

    Returns:
        One ``(batch, channels or m, r, k)`` float32 array per map.
    """
    height, batch, channels, width = pixels.shape
    tall = (np.concatenate([m.rows for m in maps]) @ pixels.reshape(height, -1)).reshape(-1, batch, channels, width)
    results, start = [], 0
    for m in maps:
        part = tall[start:start + len(m.rows)]  # (r, batch, channels, width)
        start += len(m.rows)
        if m.mix is None:
            part = part.transpose(1, 2, 0, 3)
        else:
            part = np.tensordot(m.mix, part, axes=(1, 2)).transpose(2, 0, 1, 3)
        # (batch, channels, r, width) rows end to end, so the column map is one more product.
        small = np.ascontiguousarray(part)
        results.append((small.reshape(-1, width) @ m.cols.T).reshape(*small.shape[:3], len(m.cols)))
    return results

