"""``samples.html``: random removals side by side, and the label conflicts, to judge them by eye.

Removals are a uniform random sample (not the largest groups): a person scoring them by eye
estimates the precision of what the stage removed.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

THUMBNAIL_SIDE = 120


@dataclass(frozen=True)
class Shown:
    """One product on the page."""

    product_id: str
    title: str
    image: bytes | None


@dataclass(frozen=True)
class Removal:
    """A removed product next to the kept product it matched directly."""

    kept: Shown
    removed: Shown
    rule: str
    distance: float


@dataclass(frozen=True)
class Conflict:
    """Products with byte-identical images whose labels disagree, and which labels."""

    products: Sequence[Shown]
    differs: Sequence[str]


def thumbnail_data_uri(data: bytes | None) -> str | None:
    """A small inline JPEG of an image, or None when it cannot be shown."""
    if data is None:
        return None
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        thumb = image.convert("RGB")
        thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        thumb.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _product(shown: Shown, role: str, css: str = "m") -> str:
    src = thumbnail_data_uri(shown.image)
    picture = f"<img src='{src}' alt=''>" if src else "<i>no image</i>"
    return (f"<div class='{css}'>{picture}<br><b>{html.escape(role)}</b><br>{html.escape(shown.product_id)}"
            f"<br>{html.escape(shown.title)}</div>")


def render(removals: Sequence[Removal], removed_total: int, conflicts: Sequence[Conflict], summary: str) -> str:
    """The whole HTML page."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ecom-kfp dedupe samples</title>",
        ("<style>body{font-family:sans-serif;margin:1em}.g{border:1px solid #ccc;margin:.5em;padding:.5em;"
         "display:inline-block;vertical-align:top}.m{display:inline-block;width:140px;vertical-align:top;"
         "margin:4px;font-size:12px}.kept{background:#e6ffe6}.c{background:#fff0e0}"
         "img{max-width:120px;max-height:120px}</style>"),
        "</head><body>",
        f"<p>{html.escape(summary)}</p>",
        f"<h1>Removals: {len(removals)} chosen at random of {removed_total}</h1>",
    ]
    if not removals:
        parts.append("<p>No product was removed.</p>")
    for pair in removals:
        distance = "" if math.isnan(pair.distance) else f" d={pair.distance:g}"
        parts.append("<div class='g'>" + _product(pair.kept, "kept", "m kept")
                     + _product(pair.removed, f"removed: {pair.rule}{distance}") + "</div>")
    parts.append(f"<h1>Label conflicts: {len(conflicts)} (byte-identical images, labels disagree)</h1>")
    if not conflicts:
        parts.append("<p>No conflicts.</p>")
    for conflict in conflicts:
        differs = ", ".join(conflict.differs)
        parts.append("<div class='g c'>" + "".join(_product(p, f"differs: {differs}") for p in conflict.products)
                     + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
