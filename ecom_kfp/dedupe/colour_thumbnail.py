"""Tiny YCbCr thumbnails that check pHash candidates for colour.

pHash sees only luma at low frequency, so on studio catalogs (an object on white) it cannot tell
one product from the same model in another colour or shade: a tie in purple or black, lipsticks of
one range. Resizing and re-encoding keep every region's colour, so near-duplicate candidates are
also compared as 8x8 YCbCr thumbnails, channel by channel.

The thumbnail uses pHash's own antialiased Lanczos resize (:func:`~ecom_kfp.dedupe.phash.
lanczos_resize_matrix`) rather than box-averaged cells: a smooth window hardly moves when a
resize blurs an edge a pixel across a cell border, so copies stay within a few levels of each
other while a recoloured region of a cell still shows. It is computed from the same decoded
draft image as the hashes, as two small matrix products per batch.
"""

from __future__ import annotations

import numpy as np

from ecom_kfp.dedupe.phash import lanczos_resize_matrix

#: Thumbnail side: 8x8 x 3 channels = 192 bytes per image.
THUMBNAIL_SIDE = 8
#: Largest channel difference (0..255 levels); a tolerance of this turns the check off.
MAX_LEVELS = 255


def colour_thumbnails(planes: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """Lanczos-resized ``side x side`` YCbCr thumbnails of a batch of same-size images.

    Args:
        planes: ``(batch, 3, height, width)`` YCbCr channel planes (float32 avoids a copy).
        side: Thumbnail side.

    Returns:
        ``(batch, 3 * side * side)`` uint8, channel-major (all Y, then Cb, then Cr), rounded.
    """
    batch, _, height, width = planes.shape
    rows = lanczos_resize_matrix(height, side).astype(np.float32)
    cols = lanczos_resize_matrix(width, side).astype(np.float32)
    small = rows @ planes.astype(np.float32, copy=False) @ cols.T  # (batch, 3, side, side)
    # Lanczos lobes may overshoot 0..255 next to hard edges; clip before the cast.
    return np.clip(np.rint(small), 0, MAX_LEVELS).astype(np.uint8).reshape(batch, 3 * side * side)


def max_level_difference(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Largest absolute difference of any thumbnail value, per row pair (``(n,)`` int64)."""
    if not len(left):
        return np.zeros(0, dtype=np.int64)
    return np.abs(left.astype(np.int16) - right.astype(np.int16)).max(axis=1).astype(np.int64)
