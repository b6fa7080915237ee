"""The defects planted in the demo catalog, as bytes and lines.

Each function makes one kind of defect that real catalogs have and the pipeline must survive:
broken image files (cut-off JPEGs, random bytes, an HTML error page saved under ``.jpg``), images
too small to use, near-duplicate re-uploads of the same photo (re-encoded, resized or shifted) and
catalog lines that do not parse.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable

from PIL import Image

#: Quality of every clean demo JPEG; near duplicates are re-encoded at other qualities.
JPEG_QUALITY = 90
#: Side of the planted too-small images, far below any sensible minimum.
TINY_SIDE = 16


def encode_jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of ``image`` (deterministic for a given Pillow build)."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def truncated_jpeg(data: bytes, rng: random.Random) -> bytes:
    """The first 30-70 % of a JPEG, as left by an interrupted download."""
    return data[: int(len(data) * rng.uniform(0.3, 0.7))]


def random_bytes(rng: random.Random) -> bytes:
    """Bytes that are no image format at all."""
    return rng.randbytes(rng.randint(200, 4000))


def html_page(product_id: str) -> bytes:
    """An HTML error page, as CDNs and shops return with status 200 instead of the image."""
    return (
        "<!DOCTYPE html>\n<html><head><title>Page not available</title></head>\n"
        f"<body><h1>Sorry, this item is no longer available</h1><p>Item {product_id} was removed.</p>"
        "<p><a href=\"/\">Continue shopping</a></p></body></html>\n"
    ).encode()


def tiny_image(image: Image.Image) -> bytes:
    """A valid but uselessly small JPEG of the product (a thumbnail uploaded as the photo)."""
    return encode_jpeg(image.resize((TINY_SIDE, TINY_SIDE), Image.Resampling.BILINEAR))


def _requantized(image: Image.Image, rng: random.Random) -> bytes:
    return encode_jpeg(image, quality=rng.choice((45, 55, 65, 75)))


def _resized(image: Image.Image, rng: random.Random) -> bytes:
    side = round(image.width * rng.uniform(0.8, 0.92))
    return encode_jpeg(image.resize((side, side), Image.Resampling.BICUBIC), quality=rng.choice((85, 90)))


def _shifted(image: Image.Image, rng: random.Random) -> bytes:
    dx, dy = rng.choice(((1, 0), (-1, 0), (0, 1), (0, -1)))
    # Fill the uncovered strip with the corner colour, which is the photo's background.
    shifted = image.transform(image.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy),
                              fillcolor=image.getpixel((0, 0)))
    return encode_jpeg(shifted)


#: Near-duplicate kind -> transformation of the original photo into new JPEG bytes.
NEAR_DUPLICATE_KINDS: dict[str, Callable[[Image.Image, random.Random], bytes]] = {
    "requantized": _requantized,
    "resized": _resized,
    "shifted": _shifted,
}


def malformed_line(record: dict, kind: int) -> str:
    """A catalog line that is not a JSON object, in one of three ways real exports break.

    Args:
        record: The product the line was meant to hold.
        kind: Which breakage (taken modulo 3): cut-off JSON, an exporter's error text, a JSON array.
    """
    text = json.dumps(record, ensure_ascii=False)
    breakages = (
        text[: len(text) // 2],
        f"### export error: row {record['product_id']} skipped (encoding) ###",
        json.dumps([record["product_id"], record["title"]], ensure_ascii=False),
    )
    return breakages[kind % len(breakages)]
