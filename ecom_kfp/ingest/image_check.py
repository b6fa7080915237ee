"""Decide whether downloaded bytes are a usable product image, and what to store.

Checks, in order: the bytes carry an image signature (HTML error pages and text served with an
image content type are ``not_an_image``); Pillow identifies them and, for formats with checksums
(PNG), verifies them (``corrupt_image``);
the pixel count is bounded before decoding (``too_large``, also a decompression-bomb guard); the
shorter side is at least the minimum (``too_small``); a full decode succeeds (a cut-off JPEG is
``truncated_image``: ``verify()`` alone does not catch it). JPEGs that libjpeg-turbo decodes
without a warning are accepted by it directly (:mod:`ecom_kfp.jpeg`), at a fifth of Pillow's cost
on thumbnails; Pillow checks the rest and names what is wrong.

Stored form: JPEG bytes are kept exactly as served (no generational loss, and byte-identical files
keep identical SHA-256s for exact-duplicate detection downstream). Other formats are converted once
to RGB JPEG (quality 95, alpha composited on white) so every stored image is a ``.jpg`` the dataset
stage decodes the same way. The SHA-256 is that of the stored bytes, so a file's name is its hash.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ecom_kfp import jpeg
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
class ImageLimits:
    """Size limits of an acceptable image."""

    min_side: int = 32
    max_pixels: int = 40_000_000
    max_bytes: int = 20 << 20


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
    head = data[:40].decode("latin-1").encode("unicode_escape").decode("ascii")
    return f"content type {content_type or 'unknown'}, {len(data)} bytes starting {head!r}"


def check_image(data: bytes, content_type: str | None, limits: ImageLimits) -> CheckedImage | ImageProblem:
    """Validate ``data`` and return it in stored form, or the reason it is not a usable image."""
    if len(data) > limits.max_bytes:
        return ImageProblem(Reason.TOO_LARGE, f"{len(data)} bytes > {limits.max_bytes}")
    fmt = signature(data)
    if fmt is None:
        return ImageProblem(Reason.NOT_AN_IMAGE, _describe(data, content_type))
    if fmt == "JPEG" and (size := jpeg.turbo_size(data)) is not None:
        # Most catalog images: libjpeg-turbo alone, without Pillow's per-image overhead.
        if (problem := _size_problem(*size, limits)) is not None:
            return problem
        if jpeg.decodes_cleanly(data):
            return CheckedImage(data, hashlib.sha256(data).hexdigest(), *size, fmt)
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if (problem := _size_problem(width, height, limits)) is not None:
                return problem
            if fmt == "JPEG":
                # Pillow has no JPEG verify(); the full decode is the check, on this same handle.
                probe.load()
                stored = data
            else:
                probe.verify()  # PNG chunk CRCs and the like; verify() leaves the handle unusable
        if fmt != "JPEG":
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                stored = _to_jpeg(image)
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
        flat = image.convert("RGB")
    out = io.BytesIO()
    flat.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
