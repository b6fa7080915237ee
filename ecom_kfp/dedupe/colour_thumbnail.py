"""Tiny YCbCr thumbnails that check pHash candidates for colour.

pHash sees only luma at low frequency, so on studio catalogs (an object on white) it cannot tell
one product from the same model in another colour or shade: a tie in purple or black, lipsticks of
one range. Resizing and re-encoding keep every region's colour, so near-duplicate candidates are
also compared as 8x8 YCbCr thumbnails, channel by channel.

The thumbnail uses pHash's own antialiased Lanczos resize (:func:`~ecom_kfp.dedupe.phash.
lanczos_resize_matrix`) rather than box-averaged cells: a smooth window hardly moves when a
resize blurs an edge a pixel across a cell border, so copies stay within a few levels of each
other while a recoloured region of a cell still shows. It is computed from the same reduced-size
decode as the hashes, as two small matrix products per batch.
"""

from __future__ import annotations

import numpy as np

from ecom_kfp.dedupe import separable, ycc
from ecom_kfp.dedupe.phash import lanczos_resize_matrix

#: Thumbnail side: 8x8 x 3 channels = 192 bytes per image.
THUMBNAIL_SIDE = 8
#: Largest channel difference (0..255 levels); a tolerance of this turns the check off.
MAX_LEVELS = 255


def thumbnail_map(height: int, width: int, side: int = THUMBNAIL_SIDE) -> separable.SeparableMap:
    """Lanczos resize of RGB pixels to ``side x side``, converted to YCbCr less its offset.

    The resize's rows sum to one, so it commutes with the affine RGB -> YCbCr conversion, which
    therefore runs on the thumbnail-sized data instead of on every pixel.
    """
    return separable.SeparableMap(lanczos_resize_matrix(height, side).astype(np.float32),
                                  lanczos_resize_matrix(width, side).astype(np.float32), ycc.RGB_TO_YCC)


def thumbnails_of(small: np.ndarray) -> np.ndarray:
    """``(batch, 3, side, side)`` output of :func:`thumbnail_map` -> ``(batch, 3 * side * side)`` uint8.

    Channel-major (all Y, then Cb, then Cr), rounded.
    """
    batch = len(small)
    # Lanczos lobes may overshoot 0..255 next to hard edges; clip before the cast.
    levels = np.clip(np.rint(small + ycc.YCC_OFFSET[:, None, None]), 0, MAX_LEVELS)
    return levels.astype(np.uint8).reshape(batch, -1)


def max_level_difference(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Largest absolute difference of any thumbnail value, per row pair (``(n,)`` int64)."""
    if not len(left):
        return np.zeros(0, dtype=np.int64)
    return np.abs(left.astype(np.int16) - right.astype(np.int16)).max(axis=1).astype(np.int64)
