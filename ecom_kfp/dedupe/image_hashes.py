"""Read each product's image once and compute every image hash the rules need, in parallel.

Images are decoded at reduced size with Pillow's JPEG ``draft`` (libjpeg scales in the DCT domain,
so a large photo costs a fraction of a full decode) straight into YCbCr: the luma plane feeds the
pHash and the three planes the colour grid and the colour thumbnail that checks pHash matches.
Images of one decoded size are hashed as a batch.
An image that cannot be read is returned as a reject reason, never raised.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.dedupe import colour_thumbnail, grid_hash, phash

#: Smallest decoded side requested from ``draft``: pHash resamples to 32x32, so decoding at no
#: less than that keeps every frequency the hash looks at.
DRAFT_SIDE = phash.RESIZED_SIDE

REASON_MISSING = "image_missing"
REASON_UNREADABLE = "image_unreadable"
REASON_SHA_MISMATCH = "image_sha256_mismatch"


@dataclass(frozen=True)
class ImageJob:
    """Where one product's image may be read, in order of preference, and its expected digest."""

    candidates: tuple[str, ...]
    expected_sha256: str | None


@dataclass
class ImageHashes:
    """Column-wise hashes of a sequence of images (row i belongs to job i).

    Rows with a ``reason`` are unreadable; their numeric fields are zero.
    """

    sha256: np.ndarray  # object: hex digest or None
    phash: np.ndarray  # uint64
    phash256: np.ndarray  # (n, 4) uint64: 16x16 pHash that verifies 64-bit candidates
    grid: np.ndarray  # uint64
    colour: np.ndarray  # (n, cells*cells*3) uint8 grid digits (which pictures have detail)
    thumbnail: np.ndarray  # (n, 3*side*side) uint8 YCbCr thumbnail, for the pHash colour check
    width: np.ndarray  # int64, original size before draft
    height: np.ndarray  # int64
    reason: np.ndarray  # object: reject reason or None
    detail: np.ndarray  # object: error detail or None

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of readable images."""
        return np.array([r is None for r in self.reason], dtype=bool)

    @classmethod
    def concat(cls, parts: Sequence[ImageHashes]) -> ImageHashes:
        """Stack chunk results in order."""
        if not parts:
            return cls.empty(0)
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts])
                      for name in cls.__dataclass_fields__})

    @classmethod
    def empty(cls, n: int, grid_cells: int = grid_hash.DEFAULT_GRID) -> ImageHashes:
        """``n`` rows of zeros / ``None``."""
        return cls(sha256=np.full(n, None, dtype=object), phash=np.zeros(n, dtype=np.uint64),
                   phash256=np.zeros((n, phash.VERIFY_SIDE ** 2 // 64), dtype=np.uint64),
                   grid=np.zeros(n, dtype=np.uint64),
                   colour=np.zeros((n, grid_cells * grid_cells * 3), dtype=np.uint8),
                   thumbnail=np.zeros((n, 3 * colour_thumbnail.THUMBNAIL_SIDE ** 2), dtype=np.uint8),
                   width=np.zeros(n, dtype=np.int64),
                   height=np.zeros(n, dtype=np.int64), reason=np.full(n, None, dtype=object),
                   detail=np.full(n, None, dtype=object))


def read_first(candidates: Sequence[str]) -> bytes:
    """Bytes of the first candidate URI that exists.

    Raises:
        FileNotFoundError: none of them exists.
    """
    for candidate in candidates:
        try:
            return uri.read_bytes(candidate)
        except FileNotFoundError:
            continue
    raise FileNotFoundError("not found at " + ", ".join(candidates) if candidates else "no image_uri")


def decode_ycc(data: bytes) -> tuple[np.ndarray, int, int]:
    """Decode at reduced size to a ``(h, w, 3)`` YCbCr array; also return the original width, height."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        image.draft("YCbCr", (DRAFT_SIDE, DRAFT_SIDE))
        if image.mode != "YCbCr":
            image = image.convert("RGB").convert("YCbCr")
        return np.asarray(image), width, height


def hash_chunk(jobs: Sequence[ImageJob], grid_cells: int = grid_hash.DEFAULT_GRID) -> ImageHashes:
    """Hash one chunk of images in this process (the unit of work of :func:`hash_images`)."""
    out = ImageHashes.empty(len(jobs), grid_cells)
    by_shape: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = defaultdict(list)
    for row, job in enumerate(jobs):
        try:
            data = read_first(job.candidates)
        except FileNotFoundError as err:
            out.reason[row], out.detail[row] = REASON_MISSING, str(err)
            continue
        digest = hashlib.sha256(data).hexdigest()
        if job.expected_sha256 and job.expected_sha256 != digest:
            out.reason[row] = REASON_SHA_MISMATCH
            out.detail[row] = f"expected {job.expected_sha256}, file has {digest}"
            continue
        try:
            ycc, out.width[row], out.height[row] = decode_ycc(data)
        except UnidentifiedImageError:
            out.reason[row] = REASON_UNREADABLE
            out.detail[row] = f"not an image format Pillow reads; starts with {data[:24]!r}"
            continue
        except Exception as err:  # noqa: BLE001 - any decoder failure is data (a reject), not a crash
            out.reason[row], out.detail[row] = REASON_UNREADABLE, f"{type(err).__name__}: {err}"
            continue
        out.sha256[row] = digest
        by_shape[ycc.shape].append((row, ycc))
    for items in by_shape.values():
        rows = np.array([row for row, _ in items])
        # One float32 copy as (batch, channel, h, w) planes serves every hash: the conversion
        # costs more than the small matrix products that follow it.
        planes = np.ascontiguousarray(np.stack([ycc for _, ycc in items]).transpose(0, 3, 1, 2), dtype=np.float32)
        out.phash[rows] = phash.phash_batch(planes[:, 0])
        out.phash256[rows] = phash.phash_words(planes[:, 0], phash.VERIFY_SIDE)
        digits = grid_hash.grid_digits(planes, grid_cells)
        out.colour[rows] = digits
        out.thumbnail[rows] = colour_thumbnail.colour_thumbnails(planes)
        out.grid[rows] = [grid_hash.grid_key(d, int(out.width[r]), int(out.height[r]))
                          for d, r in zip(digits, rows)]
    return out


def _hash_chunk_args(args: tuple[Sequence[ImageJob], int]) -> ImageHashes:
    return hash_chunk(*args)


def hash_images(jobs: Sequence[ImageJob], workers: int = 0, chunk_size: int = 512,
                grid_cells: int = grid_hash.DEFAULT_GRID, progress: bool = True) -> ImageHashes:
    """Hash all images, in ``workers`` processes (0 = one per CPU).

    A single chunk is hashed in this process: starting workers would cost more than it saves.
    Workers are spawned, not forked, so no HTTP client or thread of the parent leaks into them.
    """
    chunks = [(jobs[i:i + chunk_size], grid_cells) for i in range(0, len(jobs), chunk_size)]
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), unit="img", desc="hash images", disable=not progress)
    parts = []
    with bar:
        if workers == 1 or len(chunks) <= 1:
            for chunk in chunks:
                parts.append(_hash_chunk_args(chunk))
                bar.update(len(chunk[0]))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
                for chunk, part in zip(chunks, pool.map(_hash_chunk_args, chunks)):
                    parts.append(part)
                    bar.update(len(chunk[0]))
    return ImageHashes.concat(parts)
