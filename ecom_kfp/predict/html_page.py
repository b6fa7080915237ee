"""``predictions.html``: sample predictions with their images per predicted class, and the most
confident disagreements with the catalog (the likeliest wrong catalog labels), on one page.

What the page shows is chosen while scoring (:class:`PageSamples`, bounded whatever the catalog)
and saved beside it as ``samples.json``, thumbnails included, so that merging the shards of a
fanned-out run gives the page over all of them without reading an image again.
"""

from __future__ import annotations

import dataclasses
import heapq
import html
import itertools
import pathlib
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecom_kfp import uri
from ecom_kfp.dedupe.samples import thumbnail_data_uri

STYLE = ("body{font-family:sans-serif;margin:1em}.c{border:1px solid #ccc;margin:1em 0;padding:.5em}"
         ".m{display:inline-block;width:150px;vertical-align:top;margin:4px;font-size:12px}"
         "img{max-width:120px;max-height:120px}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
         "padding:2px 6px;font-size:13px}")


#: The only picture sources a page shows: the inline JPEGs :func:`thumbnail_data_uri` makes. A
#: shard's ``samples.json`` is an artifact like any other, so what it names is checked, not trusted.
_THUMBNAIL = re.compile(r"data:image/jpeg;base64,[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True)
class Sample:
    """One product shown on the page (``thumbnail``: an inline JPEG, once :meth:`PageSamples.with_thumbnails` ran)."""

    product_id: str
    title: str
    image_uri: str | None
    predicted: str
    confidence: float
    catalog: str
    thumbnail: str | None = None

    @classmethod
    def from_json(cls, obj: Any) -> Sample:
        """A sample from its ``samples.json`` form.

        Raises:
            ValueError: ``obj`` is not a sample: a field missing, unknown or of the wrong type.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(obj, dict) or set(obj) != names:
            raise ValueError(f"not a sample: expected the fields {sorted(names)}")
        texts = ("product_id", "title", "predicted", "catalog")
        if not all(isinstance(obj[k], str) for k in texts) or not all(
                obj[k] is None or isinstance(obj[k], str) for k in ("image_uri", "thumbnail")) or \
                isinstance(obj["confidence"], bool) or not isinstance(obj["confidence"], (int, float)):
            raise ValueError(f"sample {obj.get('product_id')!r}: a field has the wrong type")
        return cls(**{**obj, "confidence": float(obj["confidence"])})


def _most_predicted_first(classes: Iterable[str], counts: Mapping[str, int]) -> list[str]:
    """``classes`` by their count in ``counts``, largest first; ties by name."""
    return sorted(classes, key=lambda name: (-counts.get(name, 0), name))


@dataclass
class PageSamples:
    """What a predictions page shows: the first ``limit`` products of each predicted class, and the
    ``4 * limit`` most confident disagreements with the catalog (ties: the earlier product).

    Kept as products are scored, in bounded memory. The selection over several shards is the
    selection over their selections (:meth:`merged`): a product among the most confident of all
    is among the most confident of its own shard. Before the page is written, only the
    ``max_classes`` most predicted classes keep their samples (:meth:`restricted`; 0 = all): a
    taxonomy of thousands of classes would otherwise mean as many times ``limit`` pictures read
    and inlined.
    """

    limit: int
    max_classes: int = 0
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    _disagreements: list[tuple[float, int, Sample]] = field(default_factory=list, repr=False, compare=False)  # min-heap
    _order: itertools.count = field(default_factory=itertools.count, repr=False, compare=False)

    def keep_sample(self, sample: Sample) -> None:
        """Offer ``sample`` as an example of its predicted class."""
        if not self.limit:
            return
        kept = self.samples.setdefault(sample.predicted, [])
        if len(kept) < self.limit:
            kept.append(sample)

    def keep_disagreement(self, sample: Sample) -> None:
        """Offer ``sample``, whose prediction disagrees with its catalog category."""
        if not self.limit:
            return
        # Ties on confidence: the later product is the smaller entry, so the one dropped.
        entry = (sample.confidence, -next(self._order), sample)
        if len(self._disagreements) < 4 * self.limit:
            heapq.heappush(self._disagreements, entry)
        else:
            heapq.heappushpop(self._disagreements, entry)

    @property
    def disagreements(self) -> list[Sample]:
        """The kept disagreements, most confident first."""
        return [sample for _, _, sample in sorted(self._disagreements, key=lambda e: (-e[0], -e[1]))]

    def restricted(self, counts: Mapping[str, int]) -> PageSamples:
        """The same selection with samples of only the ``max_classes`` classes most predicted in
        ``counts`` (ties: by name)."""
        ranked = _most_predicted_first(self.samples, counts)
        return self._with({name: self.samples[name] for name in ranked[:self.max_classes or None]},
                          self.disagreements)

    def with_thumbnails(self) -> PageSamples:
        """The same selection with each sample's image read once and made an inline thumbnail."""
        def shown(sample: Sample) -> Sample:
            try:
                data = uri.read_bytes(sample.image_uri) if sample.image_uri else None
                return dataclasses.replace(sample, thumbnail=thumbnail_data_uri(data))
            except Exception:  # noqa: BLE001 - the page shows what it can; the image may be gone since scoring
                return sample

        return self._with({name: [shown(s) for s in kept] for name, kept in self.samples.items()},
                          [shown(s) for s in self.disagreements])

    def _with(self, samples: dict[str, list[Sample]], disagreements: Sequence[Sample]) -> PageSamples:
        """A selection of the same bounds holding ``samples`` and ``disagreements`` (most confident first)."""
        page = PageSamples(self.limit, self.max_classes, samples)
        for sample in disagreements:
            page.keep_disagreement(sample)
        return page

    def to_json(self) -> dict:
        """The ``samples.json`` form."""
        return {"limit": self.limit, "max_classes": self.max_classes,
                "samples": {name: [dataclasses.asdict(s) for s in kept] for name, kept in self.samples.items()},
                "disagreements": [dataclasses.asdict(s) for s in self.disagreements]}

    @classmethod
    def from_json(cls, obj: Any) -> PageSamples:
        """A selection from its ``samples.json`` form, checked as it is read.

        Raises:
            ValueError: ``obj`` is not a ``samples.json`` document.
        """
        counts = ("limit", "max_classes")
        if not isinstance(obj, dict) or not all(type(obj.get(k)) is int and obj[k] >= 0 for k in counts) \
                or not isinstance(obj.get("samples"), dict) or not isinstance(obj.get("disagreements"), list) \
                or not all(isinstance(kept, list) for kept in obj["samples"].values()):
            raise ValueError("not a samples.json document: expected limit, max_classes, samples and disagreements")
        page = cls(obj["limit"], obj["max_classes"])
        for kept in obj["samples"].values():
            for sample in kept:
                page.keep_sample(Sample.from_json(sample))
        for sample in obj["disagreements"]:
            page.keep_disagreement(Sample.from_json(sample))
        return page

    @classmethod
    def merged(cls, parts: Sequence[PageSamples]) -> PageSamples:
        """The selection over all of ``parts`` (the shards of one run, in shard order)."""
        page = cls(max((part.limit for part in parts), default=0),
                   max((part.max_classes for part in parts), default=0))
        for part in parts:
            for kept in part.samples.values():
                for sample in kept:
                    page.keep_sample(sample)
            for sample in part.disagreements:
                page.keep_disagreement(sample)
        return page


def _picture(sample: Sample) -> str:
    if sample.thumbnail and _THUMBNAIL.fullmatch(sample.thumbnail):
        return f"<img src='{sample.thumbnail}' alt=''>"
    return "<i>no image</i>"


def _card(sample: Sample, show_catalog: bool) -> str:
    catalog = f"<br>catalog: {html.escape(sample.catalog)}" if show_catalog else ""
    return (f"<div class='m'>{_picture(sample)}<br><b>{html.escape(sample.predicted)}</b> "
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


def render(report: Any, page: PageSamples, shard_pages: Sequence[str] = ()) -> str:
    """The whole page for a :class:`~ecom_kfp.predict.stage.PredictReport`: its figures, then
    ``page``'s products (with thumbnails: :meth:`PageSamples.with_thumbnails`), then links to
    ``shard_pages``, the shards' own pages of a merged run."""
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
             "<h2>Most confident disagreements with the catalog</h2>"]
    disagreements = page.disagreements
    if not disagreements:
        parts.append("<p>None.</p>")
    parts += [_card(s, True) for s in disagreements]
    shown = _most_predicted_first(page.samples, report.predicted_classes)
    parts.append("<h2>Samples per predicted class, the most predicted first</h2>")
    if len(report.predicted_classes) > len(shown):
        parts.append(f"<p>{len(shown)} of the {len(report.predicted_classes)} predicted classes; every class's "
                     "count is in report.json (<code>predicted_classes</code>).</p>")
    for name in shown:
        parts.append(f"<div class='c'><h3>{html.escape(name)} ({report.predicted_classes.get(name, 0)} "
                     "predicted)</h3>" + "".join(_card(s, bool(s.catalog)) for s in page.samples[name]) + "</div>")
    if shard_pages:
        parts.append(f"<h2>Each shard's own page ({len(shard_pages)})</h2>")
        parts += [f"<p>{_link(shard)}</p>" for shard in shard_pages]
    parts.append("</body></html>")
    return "\n".join(parts)
