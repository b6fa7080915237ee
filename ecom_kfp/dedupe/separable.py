"""Separable linear maps (resizes, cell means, low DCT rows) on batches of same-size images.

Every image summary the hashes need is ``rows @ channel @ cols.T`` for each colour channel, with
the channels optionally mixed (a colour conversion). Pixels stay interleaved as decoded,
``(height, width, channels)``: numpy copies 3-byte pixels into planes several times slower than it
copies rows, and on 60x80 thumbnails that copy cost as much as the arithmetic. A batch is laid out
with the image rows outermost, ``(height, batch, width * channels)``, so the row maps of every map
are one matrix product over all images at once; each map's column map and channel mix then act
together on the ``width * channels`` axis of that much smaller result, as one more product.

The products are sized for one core: hashing keeps BLAS to one thread per process
(:func:`~ecom_kfp.dedupe.image_hashes.one_blas_thread`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SeparableMap:
    """``rows @ channel @ cols.T``, optionally mixing the channels (a colour conversion) as well.

    Attributes:
        rows: ``(r, height)`` float32 map of the image rows.
        cols: ``(k, width)`` float32 map of the image columns.
        mix: Optional ``(m, channels)`` linear map of the channels; linear maps commute, so mixing
            the small result is the same as mixing the pixels first.
    """

    rows: np.ndarray
    cols: np.ndarray
    mix: np.ndarray | None = None

    def column_matrix(self, channels: int) -> np.ndarray:
        """The column map and the channel mix as one ``(width * channels, m * k)`` float32 matrix.

        It takes interleaved pixel rows (``width * channels`` values) to ``m`` mixed channels of
        ``k`` columns each, channel-major.
        """
        mix = np.eye(channels, dtype=np.float32) if self.mix is None else self.mix
        width = self.cols.shape[1]
        return np.einsum("kw,mc->wcmk", self.cols, mix).reshape(width * channels, -1).astype(np.float32)


def batch_layout(images: Sequence[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """Same-size ``(height, width, channels)`` images -> float32 ``(height, batch, width, channels)``.

    Args:
        images: The images, pixels interleaved as decoded.
        out: Optional ``(height, capacity, width * channels)`` float32 buffer with room for the
            batch, written instead of a new array (see :class:`BatchBuffers`).

    Returns:
        The batch; a view of ``out`` when given.
    """
    height, width, channels = images[0].shape
    if out is None:
        out = np.empty((height, len(images), width * channels), dtype=np.float32)
    for i, image in enumerate(images):
        out[:, i] = image.reshape(height, width * channels)  # one strided cast-and-copy per image
    return out[:, :len(images)].reshape(height, len(images), width, channels)


def project_many(pixels: np.ndarray, maps: Sequence[SeparableMap],
                 rows_out: np.ndarray | None = None) -> list[np.ndarray]:
    """Apply several maps to every channel of a batch in :func:`batch_layout`.

    The row maps are stacked into one matrix product: BLAS packs the whole pixel matrix once per
    product, which on small images costs as much as the arithmetic, so one product serves all.

    Args:
        pixels: ``(height, batch, width, channels)`` float32; the last three axes contiguous.
        maps: The maps; each one's ``rows`` has ``height`` columns and its ``cols`` ``width``.
        rows_out: Optional float32 buffer of at least ``(sum of the maps' r, batch * width *
            channels)`` for the row product, written instead of a new array.

    Returns:
        One ``(batch, channels or m, r, k)`` float32 array per map.
    """
    height, batch, width, channels = pixels.shape
    flat = pixels.reshape(height, batch * width * channels)  # a view, also of a buffer's first columns
    rows = np.concatenate([m.rows for m in maps])
    out = None if rows_out is None else rows_out[:len(rows), :flat.shape[1]]
    tall = np.matmul(rows, flat, out=out)  # (sum of r, batch * width * channels)
    results, start = [], 0
    for m in maps:
        part = tall[start:start + len(m.rows)].reshape(len(m.rows) * batch, width * channels)
        start += len(m.rows)
        mixed = (part @ m.column_matrix(channels)).reshape(len(m.rows), batch, -1, len(m.cols))
        results.append(mixed.transpose(1, 2, 0, 3))
    return results


class BatchBuffers:
    """Float32 buffers for batches of same-size images, reused batch after batch.

    A fresh array of a few MB is mapped from the OS and faulted in page by page on first touch. On
    this project's 2-core VMs, converting a 60x80 thumbnail to float took 24 us into a fresh batch
    array against 3 us into a reused one, more than the arithmetic on it, so every batch's pixels
    and row products go into the same memory. It grows to the largest batch and the most map rows asked of it.

    Args:
        height: Image height.
        width: Image width.
        channels: Channels per pixel.
    """

    def __init__(self, height: int, width: int, channels: int) -> None:
        self._pixels = np.empty((height, 0, width * channels), dtype=np.float32)
        self._rows = np.empty((0, 0), dtype=np.float32)

    def project(self, images: Sequence[np.ndarray], maps: Sequence[SeparableMap]) -> list[np.ndarray]:
        """:func:`project_many` of the batch of ``images``, in these buffers.

        The results are new arrays; the buffers are free for the next batch once this returns.
        """
        height, capacity, row_values = self._pixels.shape
        if len(images) > capacity:
            self._pixels = np.empty((height, len(images), row_values), dtype=np.float32)
        map_rows, columns = sum(len(m.rows) for m in maps), self._pixels.shape[1] * row_values
        if len(self._rows) < map_rows or self._rows.shape[1] != columns:
            self._rows = np.empty((max(map_rows, len(self._rows)), columns), dtype=np.float32)
        return project_many(batch_layout(images, self._pixels), maps, self._rows)
