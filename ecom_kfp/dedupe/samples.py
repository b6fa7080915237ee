"""``samples.html``: duplicate groups side by side with inline thumbnails, to judge matches by eye."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ecom_kfp.dedupe.rules import RULES, TRANSITIVE

THUMBNAIL_SIDE = 120
MAX_MEMBERS_SHOWN = 12


@dataclass(frozen=True)
class SampleMember:
    """One product in a sample group."""

    product_id: str
    title: str
    role: str  # "kept" or the rule that matched it
    distance: float
    image: bytes | None


def select_groups(kept_index: np.ndarray, group_size: np.ndarray, rule: np.ndarray,
                  limit: int) -> list[int]:
    """Kept indices of up to ``limit`` groups: the largest groups, taking turns between rules.

    Taking turns makes every rule that matched anything visible even when one rule dominates.
    """
    dropped = np.nonzero(kept_index != np.arange(len(kept_index)))[0]
    by_rule: dict[str, list[int]] = {}
    for name in (*RULES, TRANSITIVE):
        members = dropped[rule[dropped] == name]
        groups = np.unique(kept_index[members])
        order = np.lexsort((groups, -group_size[groups]))
        by_rule[name] = list(groups[order])
    chosen: list[int] = []
    while len(chosen) < limit and any(by_rule.values()):
        for queue in by_rule.values():
            while queue and queue[0] in chosen:
                queue.pop(0)
            if queue and len(chosen) < limit:
                chosen.append(int(queue.pop(0)))
    return chosen


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


def render(groups: Sequence[Sequence[SampleMember]], summary: str) -> str:
    """The whole HTML page."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ecom-kfp dedupe samples</title>",
        "<style>body{font-family:sans-serif;margin:1em}.g{border:1px solid #ccc;margin:1em 0;"
        "padding:.5em}.m{display:inline-block;width:140px;vertical-align:top;margin:4px;"
        "font-size:12px}.kept{background:#e6ffe6}img{max-width:120px;max-height:120px}</style>",
        "</head><body><h1>Duplicate groups</h1>",
        f"<p>{html.escape(summary)}</p>",
    ]
    if not groups:
        parts.append("<p>No duplicate groups were found.</p>")
    for members in groups:
        kept = members[0]
        parts.append(f"<div class='g'><h3>group {html.escape(kept.product_id)} "
                     f"({len(members)} shown)</h3>")
        for member in members:
            src = thumbnail_data_uri(member.image)
            picture = f"<img src='{src}' alt=''>" if src else "<i>no image</i>"
            distance = "" if np.isnan(member.distance) else f" d={member.distance:g}"
            css = "m kept" if member.role == "kept" else "m"
            parts.append(f"<div class='{css}'>{picture}<br><b>{html.escape(member.role)}{distance}</b>"
                         f"<br>{html.escape(member.product_id)}<br>{html.escape(member.title)}</div>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def sample_members(kept: int, kept_index: np.ndarray, rule: np.ndarray, distance: np.ndarray,
                   product_ids: Sequence[str], titles: Sequence[str | None],
                   read_image: Callable[[int], bytes | None]) -> list[SampleMember]:
    """The kept product then up to ``MAX_MEMBERS_SHOWN - 1`` dropped ones, closest first."""
    dropped = np.nonzero((kept_index == kept) & (np.arange(len(kept_index)) != kept))[0]
    closest = dropped[np.lexsort((dropped, np.nan_to_num(distance[dropped], nan=np.inf)))]
    rows = [kept, *closest[:MAX_MEMBERS_SHOWN - 1]]
    return [SampleMember(product_id=str(product_ids[i]), title=titles[i] or "",
                         role="kept" if i == kept else str(rule[i]),
                         distance=float("nan") if i == kept else float(distance[i]),
                         image=read_image(i)) for i in rows]
