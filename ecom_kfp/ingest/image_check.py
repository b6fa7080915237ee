"""Decide whether downloaded bytes are a usable product image, and what to store.

Checks, in order: the bytes carry an image signature (HTML error pages and text served with an
image content type are ``not_an_image``); Pillow identifies them and, for formats with checksums
(PNG), verifies them (``corrupt_image``);
the pixel count is bounded before decoding (``too_large``, also a decompression-bomb guard); the
shorter side is at least the minimum (``too_small``); a full decode succeeds, holding its pixels
of a :class:`PixelBudget` shared by the decoding threads (a cut-off JPEG is
``truncated_image``: ``verify()`` alone does not catch it). JPEGs that libjpeg-turbo decodes
without a warning are accepted by it directly (:mod:`ecom_kfp.jpeg`), at a fifth of Pillow's cost
on thumbnails; Pillow checks the rest and names what is wrong.

Stored form: JPEG bytes are kept exactly as served (no generational loss, and byte-identical files
keep identical SHA-256s for exact-duplicate detection downstream). Other formats are converted once
to RGB JPEG (quality 95, alpha composited on white; 16-bit and float greyscale scaled to 8 bits,
or ``unsupported_pixels`` when the values have no 8-bit meaning) so every stored image is a
``.jpg`` the dataset stage decodes the same way. The SHA-256 is that of the stored bytes, so a file's name is its hash.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ecom_kfp import jpeg
from ecom_kfp.ingest.config import ImageLimits
from ecom_kfp.ingest.reasons import Reason

_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
JPEG_QUALITY = 95


@dataclass(frozen=True)
class CheckedImage:
    """A valid image in stored form."""

    data: bytes
    sha256: str
    width: int
    height: int
    source_format: str


@dataclass(frozen=True)
class ImageProblem:
    """Why bytes were not accepted as an image."""

    reason: Reason
    detail: str


def signature(data: bytes) -> str | None:
    """The image format the leading bytes announce, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _SIGNATURES if data.startswith(magic)), None)


def _describe(data: bytes, content_type: str | None) -> str:
    # By type and size only: the bytes may be a local file or an internal page (never copied into rejects).
    return f"content type {content_type or 'unknown'}, {len(data)} bytes"


class PixelBudget:
    """Pixels that may be decoded at once over all threads of a process.

    Decode memory follows pixels, not bytes (a 131 KB PNG can hold 40 million pixels), so each
    decode holds its width x height, read from the header, until it is done; an image larger than
    the whole budget waits for it to be free and then decodes alone.
    """

    def __init__(self, pixels: int):
        _return_large_buffers_to_the_os()
        self.pixels = pixels
        self._free = pixels
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Wait until ``pixels`` (at most the whole budget) are free, and hold them meanwhile."""
        need = min(pixels, self.pixels)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= need)
            self._free -= need
        try:
            yield
        finally:
            with self._changed:
                self._free += need
                self._changed.notify_all()


#: glibc's ``mallopt`` parameter number of ``M_MMAP_THRESHOLD``.
_M_MMAP_THRESHOLD = -3


@functools.cache
def _return_large_buffers_to_the_os() -> None:
    """Serve allocations of 1 MiB and more by ``mmap`` so that freeing them gives the memory back.

    By default glibc raises this threshold each time a large block is freed (up to 32 MiB), after
    which Pillow's 16 MiB image blocks come from per-thread arenas that keep them once freed: with
    16 decode threads, memory then follows the largest image each thread ever decoded, whatever the
    pixel budget; fresh mappings are also faster than arena growth (the budget's memory figures in
    ``benchmarks/README.md`` are measured with this on). A no-op where the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 20)


class _UnsupportedPixels(ValueError):
    """Pixel values with no faithful 8-bit form."""


def check_image(data: bytes, content_type: str | None, limits: ImageLimits,
                budget: PixelBudget | None = None) -> CheckedImage | ImageProblem:
    """Validate ``data`` and return it in stored form, or the reason it is not a usable image.

    Args:
        data: The downloaded bytes.
        content_type: What the server said they are (only for the reject's detail).
        limits: Accepted sizes.
        budget: Shared bound on pixels decoded at once; None = no bound.
    """
    if len(data) > limits.max_bytes:
        return ImageProblem(Reason.TOO_LARGE, f"{len(data)} bytes > {limits.max_bytes}")
    fmt = signature(data)
    if fmt is None:
        return ImageProblem(Reason.NOT_AN_IMAGE, f"no image signature; {_describe(data, content_type)}")
    budget = budget or PixelBudget(limits.max_pixels)
    if fmt == "JPEG" and (size := jpeg.turbo_size(data)) is not None:
        # Most catalog images: libjpeg-turbo alone, without Pillow's per-image overhead.
        if (problem := _size_problem(*size, limits)) is not None:
            return problem
        with budget.hold(size[0] * size[1]):
            clean = jpeg.decodes_cleanly(data)
        if clean:
            return CheckedImage(data, hashlib.sha256(data).hexdigest(), *size, fmt)
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if (problem := _size_problem(width, height, limits)) is not None:
                return problem
            if fmt == "JPEG":
                # Pillow has no JPEG verify(); the full decode is the check, on this same handle.
                with budget.hold(width * height):
                    probe.load()
                stored = data
            else:
                probe.verify()  # PNG chunk CRCs and the like; verify() leaves the handle unusable
        if fmt != "JPEG":
            with budget.hold(width * height), Image.open(io.BytesIO(data)) as image:
                image.load()
                stored = _to_jpeg(image)
    except _UnsupportedPixels as err:
        return ImageProblem(Reason.UNSUPPORTED_PIXELS, f"{fmt} {width}x{height}: {err}")
    except Image.DecompressionBombError as err:
        return ImageProblem(Reason.TOO_LARGE, str(err))
    except UnidentifiedImageError:
        return ImageProblem(Reason.CORRUPT_IMAGE, f"{fmt} signature but unreadable; {_describe(data, content_type)}")
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # Pillow reports a decoder that ran out of data as "image file is truncated" (or EOF).
        truncated = "truncated" in str(err) or isinstance(err, EOFError)
        return ImageProblem(Reason.TRUNCATED_IMAGE if truncated else Reason.CORRUPT_IMAGE,
                            f"{fmt}, {len(data)} bytes: {err}")
    return CheckedImage(stored, hashlib.sha256(stored).hexdigest(), width, height, fmt)


def _size_problem(width: int, height: int, limits: ImageLimits) -> ImageProblem | None:
    """Checked from the header, before anything is decoded (also a decompression-bomb guard)."""
    if width * height > limits.max_pixels:
        return ImageProblem(Reason.TOO_LARGE, f"{width}x{height} pixels > {limits.max_pixels}")
    if min(width, height) < limits.min_side:
        return ImageProblem(Reason.TOO_SMALL, f"{width}x{height}, shorter side < {limits.min_side}")
    return None


def _to_jpeg(image: Image.Image) -> bytes:
    image.seek(0)  # animated formats: the first frame
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat = _to_8bit(image).convert("RGB")
    out = io.BytesIO()
    flat.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


#: Modes whose values are 16-bit samples (PNG opens 16-bit greyscale as ``I`` or ``I;16``).
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def _to_8bit(image: Image.Image) -> Image.Image:
    """Greyscale of more than 8 bits (16-bit, 32-bit integer, float) scaled to 8-bit ``L``.

    Pillow's own ``convert`` clips these to 0..255, which stores a 16-bit picture pure white and a
    float one (values 0..1) pure black. 16-bit samples are divided by 257; float samples in [0, 1]
    are multiplied by 255 and those in [0, 255] kept; anything else has no faithful 8-bit form.
    """
    mode = image.mode
    if mode not in _SIXTEEN_BIT and mode not in ("I", "F"):
        return image
    import numpy as np  # only for these rare images: fetch workers do not pay its import otherwise

    values = np.asarray(image)
    if mode == "F":
        if not np.isfinite(values).all():
            raise _UnsupportedPixels("float pixels that are NaN or infinite")
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 255:
            raise _UnsupportedPixels(f"float pixels in [{low:g}, {high:g}], neither [0, 1] nor [0, 255]")
        scale = 255.0 if high <= 1.0 else 1.0
    else:
        low, high = int(values.min()), int(values.max())
        sixteen = mode in _SIXTEEN_BIT or image.format == "PNG"
        if low < 0 or high > (65535 if sixteen else 255):
            raise _UnsupportedPixels(f"{mode} pixels in [{low}, {high}]")
        scale = 255.0 / 65535.0 if sixteen else 1.0
    return Image.fromarray(np.rint(values.astype(np.float32) * scale).astype(np.uint8), mode="L")
