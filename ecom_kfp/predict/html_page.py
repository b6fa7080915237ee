"""``predictions.html``: sample predictions with their images per predicted class, and the most
confident disagreements with the catalog (the likeliest wrong catalog labels), on one page."""

from __future__ import annotations

import html
import pathlib
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecom_kfp import uri
from ecom_kfp.dedupe.samples import thumbnail_data_uri

STYLE = ("body{font-family:sans-serif;margin:1em}.c{border:1px solid #ccc;margin:1em 0;padding:.5em}"
         ".m{display:inline-block;width:150px;vertical-align:top;margin:4px;font-size:12px}"
         "img{max-width:120px;max-height:120px}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
         "padding:2px 6px;font-size:13px}")


@dataclass(frozen=True)
class Sample:
    """One product shown on the page."""

    product_id: str
    title: str
    image_uri: str | None
    predicted: str
    confidence: float
    catalog: str


def _picture(image_uri: str | None) -> str:
    try:
        src = thumbnail_data_uri(uri.read_bytes(image_uri)) if image_uri else None
    except Exception:  # noqa: BLE001 - the page shows what it can; the image may be gone since scoring
        src = None
    return f"<img src='{src}' alt=''>" if src else "<i>no image</i>"


def _card(sample: Sample, show_catalog: bool) -> str:
    catalog = f"<br>catalog: {html.escape(sample.catalog)}" if show_catalog else ""
    return (f"<div class='m'>{_picture(sample.image_uri)}<br><b>{html.escape(sample.predicted)}</b> "
            f"{sample.confidence:.2f}{catalog}<br>{html.escape(sample.product_id)}<br>{html.escape(sample.title)}</div>")


def browser_url(page: str) -> str | None:
    """Where a browser opens ``page``: a ``gs://`` object through the Cloud console's authenticated
    download address, a local path as ``file://``, an http(s) or file URL as it is; None for any
    other scheme (a ``javascript:`` URI in a shard list must not become a link)."""
    scheme = urllib.parse.urlsplit(page).scheme.lower()
    if scheme == "gs":
        return "https://storage.cloud.google.com/" + urllib.parse.quote(page[len("gs://"):])
    if not scheme:
        return pathlib.Path(page).resolve().as_uri()
    return page if scheme in ("https", "http", "file") else None


def _link(page: str) -> str:
    url = browser_url(page)
    return html.escape(page) if url is None else f"<a href='{html.escape(url)}'>{html.escape(page)}</a>"


def render(report: Any, samples: Mapping[str, Sequence[Sample]], disagreements: Sequence[Sample],
           note: str = "", shard_pages: Sequence[str] = ()) -> str:
    """The whole page for a :class:`~ecom_kfp.predict.stage.PredictReport` (``note`` and the
    links to ``shard_pages``, the shards' own pages of a merged run, replace the samples)."""
    rows = [("products", report.input), ("scored", report.scored), ("rejected", report.rejected),
            ("accepted (confidence >= threshold)", f"{report.accepted} ({report.share_accepted:.1%})"),
            ("suspect catalog labels", f"{report.suspect} ({report.share_suspect:.1%})"),
            ("agreement with the catalog", f"{report.agreement_rate:.1%} of {report.with_catalog_category}"),
            ("thresholds", ", ".join(f"{t:.3f}" for t in report.thresholds) + f" ({report.thresholds_source})"),
            ("products/s", f"{report.products_per_second:.1f}")]
    rows += [(f"drift {name}", f"TV {d.total_variation:.3f}, PSI {d.psi:.3f}") for name, d in report.drift.items()]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>ecom-kfp predictions</title>",
             f"<style>{STYLE}</style></head><body><h1>Predictions</h1>",
             f"<p>model: {html.escape(report.model)}</p><table>",
             *(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows), "</table>",
             f"<p>{html.escape(note)}</p>" if note else "<h2>Most confident disagreements with the catalog</h2>"]
    if note:
        parts += [f"<p>{_link(page)}</p>" for page in shard_pages]
        return "\n".join(parts + ["</body></html>"])
    if not disagreements:
        parts.append("<p>None.</p>")
    parts += [_card(s, True) for s in disagreements]
    parts.append("<h2>Samples per predicted class</h2>")
    for name in sorted(samples):
        parts.append(f"<div class='c'><h3>{html.escape(name)} ({report.predicted_classes.get(name, 0)} "
                     "predicted)</h3>" + "".join(_card(s, bool(s.catalog)) for s in samples[name]) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
