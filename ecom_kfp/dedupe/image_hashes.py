"""Read each product's image once and compute every image hash the rules need, in parallel.

JPEGs are decoded by libjpeg-turbo (:mod:`ecom_kfp.jpeg`) straight into a numpy RGB array at
reduced size: it scales in the DCT domain, so a large photo costs a fraction of a full decode.
Other formats, and JPEGs it refuses, go through Pillow (with its JPEG ``draft``). Luma (see
:mod:`~ecom_kfp.dedupe.ycc`) feeds the pHash; the RGB pixels feed the colour grid and the colour
thumbnail that checks pHash matches. Images of one decoded size are hashed in small batches, as
matrix products in buffers each process keeps for the sizes it sees
(:class:`~ecom_kfp.dedupe.separable.BatchBuffers`).
An image that cannot be read is returned as a reject reason, never raised.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import multiprocessing
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain, islice

import numpy as np
import simplejpeg
import threadpoolctl
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ecom_kfp import jpeg, uri
from ecom_kfp.dedupe import colour_thumbnail, grid_hash, phash, separable, ycc
from ecom_kfp.resources import available_cpus

#: Smallest decoded side asked of the reduced-size decode: pHash resamples to 32x32, so decoding
#: at no less than that keeps every frequency the hash looks at.
DRAFT_SIDE = phash.RESIZED_SIDE
#: Most images hashed per batch of matrix products: 64 thumbnails' float pixels (~3.7 MB at 60x80)
#: stay in cache; a batch of a whole 512-image chunk is slower per image (memory-bound).
BATCH = 64
#: Most float pixel bytes per batch, so larger decoded sizes get fewer images per batch: it keeps
#: their batches in cache too, and bounds each process's kept buffers (:func:`_buffers`).
BATCH_BYTES = 4 << 20

#: Chunks submitted to the worker processes and not yet collected, per worker: enough to keep each
#: busy while the parent gathers results, few enough that the jobs in flight stay bounded.
CHUNKS_IN_FLIGHT = 2

REASON_MISSING = "image_missing"
REASON_UNREADABLE = "image_unreadable"
REASON_SHA_MISMATCH = "image_sha256_mismatch"


@dataclass(frozen=True, slots=True)
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


def draft_shrink(width: int, height: int) -> int:
    """Pillow's ``draft`` factor: the largest of 1, 2, 4, 8 that keeps both sides >= ``DRAFT_SIDE``.

    libjpeg-turbo could shrink by any M/8, but on myntra's 60x80 thumbnails its finer factors (a
    5/8 decode) moved the colour thumbnails of resized copies by up to 21 levels, far past the
    pHash colour tolerance; the power-of-two factors keep both decoders' output the same size.
    """
    fits = max(min(width, height) // DRAFT_SIDE, 1)
    return min(8, 1 << (fits.bit_length() - 1))


def decode_rgb(data: bytes) -> tuple[np.ndarray, int, int]:
    """Decode at reduced size to a ``(h, w, 3)`` uint8 RGB array.

    Both decoders shrink a JPEG in the DCT domain by :func:`draft_shrink`.

    Returns:
        The pixels, and the original width and height.

    Raises:
        UnidentifiedImageError: not an image format Pillow reads.
        Exception: any decoder failure (truncated or corrupt data).
    """
    if (size := jpeg.turbo_size(data)) is not None:
        width, height = size
        shrink = draft_shrink(width, height)
        try:
            rgb = simplejpeg.decode_jpeg(data, "RGB", min_height=-(-height // shrink), min_width=-(-width // shrink))
            return rgb, width, height
        except ValueError:
            pass  # strict libjpeg-turbo refused it: Pillow decides whether it is readable, and why not
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        image.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))
        return np.asarray(image.convert("RGB")), width, height


def batch_capacity(shape: tuple[int, ...]) -> int:
    """Images of one decoded ``shape`` hashed per batch: :data:`BATCH`, fewer when their float
    pixels would exceed :data:`BATCH_BYTES`, and always at least one."""
    return max(1, min(BATCH, BATCH_BYTES // (4 * math.prod(shape))))


def hash_chunk(jobs: Sequence[ImageJob], grid_cells: int = grid_hash.DEFAULT_GRID) -> ImageHashes:
    """Hash one chunk of images in this process (the unit of work of :func:`hash_images`)."""
    out = ImageHashes.empty(len(jobs), grid_cells)
    # Each size's batch is hashed as soon as it is full, while its pixels are still in cache.
    pending: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = defaultdict(list)
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
            rgb, out.width[row], out.height[row] = decode_rgb(data)
        except UnidentifiedImageError:
            out.reason[row] = REASON_UNREADABLE
            out.detail[row] = f"not an image format Pillow reads; starts with {data[:24]!r}"
            continue
        except Exception as err:  # noqa: BLE001 - any decoder failure is data (a reject), not a crash
            out.reason[row], out.detail[row] = REASON_UNREADABLE, f"{type(err).__name__}: {err}"
            continue
        out.sha256[row] = digest
        batch = pending[rgb.shape]
        batch.append((row, rgb))
        if len(batch) == batch_capacity(rgb.shape):
            _hash_batch(out, batch, grid_cells)
            batch.clear()
    for batch in pending.values():
        if batch:
            _hash_batch(out, batch, grid_cells)
    return out


@functools.lru_cache(maxsize=8)
def _buffers(height: int, width: int, channels: int) -> separable.BatchBuffers:
    """This process's batch buffers for one decoded size, kept for the next batch of that size.

    Each process hashes one batch at a time, so a set is never in use twice at once. Catalogs have
    a few common sizes; a size seen once costs one small allocation, sized to its batch. A set holds
    at most one batch of :func:`batch_capacity`, about :data:`BATCH_BYTES` of pixels, so the eight
    kept stay within a few tens of MB however large the photos. Worker processes free them on exit;
    :func:`hash_images` frees them when it hashed in its own process.
    """
    return separable.BatchBuffers(height, width, channels)


def _hash_batch(out: ImageHashes, batch: Sequence[tuple[int, np.ndarray]], grid_cells: int) -> None:
    """Fill the rows of ``out`` named in ``batch`` from their same-size ``(height, width, 3)`` RGB pixels."""
    rows = np.array([row for row, _ in batch])
    images = [rgb for _, rgb in batch]
    height, width, channels = images[0].shape
    low, means, small = _buffers(height, width, channels).project(images, [
        phash.low_frequency_map(height, width, phash.VERIFY_SIDE, ycc.RGB_TO_YCC[:1]),
        grid_hash.cell_mean_map(height, width, grid_cells),
        colour_thumbnail.thumbnail_map(height, width)])
    out.phash[rows] = phash.hash_words(low[:, 0, :phash.HASH_SIDE, :phash.HASH_SIDE])[:, 0]
    out.phash256[rows] = phash.hash_words(low[:, 0])
    digits = grid_hash.digits_of_means(means)
    out.colour[rows] = digits
    out.thumbnail[rows] = colour_thumbnail.thumbnails_of(small)
    out.grid[rows] = [grid_hash.grid_key(d, int(out.width[r]), int(out.height[r])) for d, r in zip(digits, rows)]


def one_blas_thread() -> threadpoolctl.threadpool_limits:
    """Keep BLAS to one thread in this process (until the returned limits' ``restore_original_limits``).

    Hashing runs one process per core; OpenBLAS would otherwise start a thread per core for each
    batch's matrix product in every one of them and make them wait on each other.
    """
    return threadpoolctl.threadpool_limits(limits=1, user_api="blas")


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Lists of ``size`` consecutive items (the last one shorter), consuming ``items`` lazily."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def hash_images(jobs: Iterable[ImageJob], workers: int = 0, chunk_size: int = 512,
                grid_cells: int = grid_hash.DEFAULT_GRID, progress: bool = True,
                total: int | None = None) -> ImageHashes:
    """Hash all images, in ``workers`` processes (0 = one per CPU), each with one BLAS thread.

    ``jobs`` is consumed lazily, ``chunk_size`` at a time, with at most :data:`CHUNKS_IN_FLIGHT`
    chunks per worker submitted and not yet collected: a generator of jobs is never held whole, so
    the jobs cost memory per chunk, not per product. ``total`` (jobs expected) only sizes the
    progress bar. A single chunk is hashed in this process: starting workers would cost more than
    it saves. Workers are spawned, not forked, so no HTTP client or thread of the parent leaks into them.
    """
    chunks = batched(jobs, chunk_size)
    first = list(islice(chunks, 2))
    chunks = chain(first, chunks)
    workers = workers or available_cpus()
    bar = tqdm(total=total, unit="img", desc="hash images", disable=not progress)
    parts = []
    with bar:
        if workers == 1 or len(first) <= 1:
            try:
                with one_blas_thread():
                    for chunk in chunks:
                        parts.append(hash_chunk(chunk, grid_cells))
                        bar.update(len(chunk))
            finally:
                _buffers.cache_clear()  # this process goes on; its batch buffers are done with
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=one_blas_thread) as pool:
                pending: deque[tuple[int, Future[ImageHashes]]] = deque()
                for chunk in chain(chunks, [None]):
                    # Collect in order once enough are in flight (and all of them after the last chunk).
                    while pending and (chunk is None or len(pending) >= CHUNKS_IN_FLIGHT * workers):
                        size, future = pending.popleft()
                        parts.append(future.result())
                        bar.update(size)
                    if chunk is not None:
                        pending.append((len(chunk), pool.submit(hash_chunk, chunk, grid_cells)))
    return ImageHashes.concat(parts)
