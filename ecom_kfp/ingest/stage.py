"""The ingest stage: catalog in, ``products.parquet`` + ``rejects.parquet`` + images + report out.

``run(config)`` reads the records of one shard, applies the metadata rules, fetches each distinct
image source once, and writes the :class:`~ecom_kfp.contracts.layouts.IngestLayout`. Every record
of the shard ends as exactly one product row or one reject row (checked before anything is written).
Re-running into the same output is resumable: sources that an earlier run's ``products.parquet``
already resolved to a stored image are not fetched again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.contracts.tables import PRODUCTS, Reject, from_rows, rejects_table
from ecom_kfp.ingest import sharding, sources
from ecom_kfp.contracts.business_value import BusinessValueTable
from ecom_kfp.ingest.column_map import ColumnMap
from ecom_kfp.ingest.config import IngestConfig
from ecom_kfp.ingest.fetch import FetchedImage, FetchFailure, FetchOutcome, fetch_images
from ecom_kfp.ingest.normalize import CatalogProduct, Normalizer
from ecom_kfp.ingest.readers import BadRecord, open_catalog
from ecom_kfp.ingest.reasons import STAGE, Reason
from ecom_kfp.ingest.store import ImageStore
from ecom_kfp.report import Timings, check_accounting, write_report

log = logging.getLogger(__name__)


@dataclass
class ImageCounts:
    """What happened to image sources in one run."""

    sources: int = 0  # distinct sources among the shard's products that passed the metadata rules
    reused: int = 0  # resolved by an earlier run into the same output; not fetched
    fetched: int = 0  # fetched in this run (success or failure)
    failed: int = 0
    attempts: int = 0
    retries: int = 0
    stored_new: int = 0  # files written (identical content is stored once)
    bytes_downloaded: int = 0
    bytes_stored: int = 0


@dataclass(kw_only=True)
class IngestCounts:
    """The counts of an ingest output, whether one shard wrote it or a merge of shards did."""

    stage: str = STAGE
    input_records: int = 0
    accepted: int = 0
    rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    catalog_truncated: bool = False
    images: ImageCounts = field(default_factory=ImageCounts)
    images_per_second: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def tally(self, accepted: int, reject_reasons: Sequence[str]) -> None:
        """Record the accepted and rejected counts, failing unless they add up to ``input_records``."""
        self.accepted = accepted
        self.rejected = len(reject_reasons)
        self.rejects_by_reason = dict(sorted(Counter(reject_reasons).items()))
        check_accounting(STAGE, self.input_records, accepted=self.accepted, rejected=self.rejected)

    def set_timings(self, timings: Timings) -> None:
        """Record the seconds of each phase, rounded to milliseconds."""
        self.timings = {k: round(v, 3) for k, v in timings.seconds.items()}


@dataclass
class IngestReport(IngestCounts):
    """``report.json`` of the ingest stage."""

    catalog: str
    out: str
    format: str
    shard_index: int
    num_shards: int


def _previous_images(layout: IngestLayout, store: ImageStore) -> dict[str, FetchedImage]:
    """Sources an earlier run into ``layout`` resolved to images that are still stored."""
    if not uri.exists(layout.products):
        return {}
    table = uri.read_parquet(layout.products, columns=["image_url", "image_sha256", "width", "height"])
    known = {}
    for row in table.to_pylist():
        sha = row["image_sha256"]
        if row["image_url"] and sha and row["image_url"] not in known and store.has(sha):
            known[row["image_url"]] = FetchedImage(sha, store.uri_of(sha), row["width"], row["height"],
                                                   0, 0, newly_stored=False, attempts=0)
    return known


def _product_row(product: CatalogProduct, image: FetchedImage) -> dict:
    return {
        "product_id": product.product_id,
        "title": product.title,
        "title_normalized": product.title_normalized,
        "brand": product.brand,
        "price": product.price,
        "category_path": list(product.category_path),
        "business_value": product.business_value,
        "image_url": product.image_source,
        "image_uri": image.uri,
        "image_sha256": image.sha256,
        "width": image.width,
        "height": image.height,
        "source": product.source,
    }


def _read(config: IngestConfig, report: IngestReport) -> tuple[list[CatalogProduct], list[Reject]]:
    """The shard's records as candidate products and metadata rejects."""
    values = BusinessValueTable.load(config.business_value_uri) if config.business_value_uri else None
    candidates: list[CatalogProduct] = []
    rejects: list[Reject] = []
    seen_ids: set[str] = set()
    with open_catalog(config.catalog, config.format) as catalog:
        report.format = catalog.format
        columns = ColumnMap.parse(config.column_map, catalog.default_column_map())
        if catalog.columns:  # fixed header: mistakes in the mapping show before any row is read
            columns = columns.check_columns(catalog.columns)
        normalizer = Normalizer(columns, config.images_base or sources.catalog_dir(config.catalog),
                                values, config.min_title_tokens)
        for record in tqdm(catalog, desc="catalog", unit="rec", disable=not config.progress, mininterval=0.5):
            pid = None if isinstance(record, BadRecord) else normalizer.product_id(record.fields)
            key = sharding.record_key(pid, record.position)
            if sharding.shard_of(key, config.num_shards) != config.shard_index:
                continue
            report.input_records += 1
            if isinstance(record, BadRecord):
                rejects.append(Reject(None, record.reason, f"line {record.position}: {record.detail}"))
            elif pid is not None and pid in seen_ids:
                rejects.append(Reject(pid, Reason.DUPLICATE_PRODUCT_ID,
                                      f"line {record.position} repeats an earlier product id"))
            else:
                if pid is not None:
                    seen_ids.add(pid)
                outcome = normalizer(record.fields)
                (rejects if isinstance(outcome, Reject) else candidates).append(outcome)
        report.catalog_truncated = catalog.truncated
    if report.catalog_truncated:
        log.warning("catalog %s is truncated (compressed stream cut off); read what was there", config.catalog)
    return candidates, rejects


def _fetch(config: IngestConfig, candidates: list[CatalogProduct], store: ImageStore,
           report: IngestReport) -> dict[str, FetchOutcome]:
    """The outcome of every distinct image source of ``candidates``."""
    outcomes: dict[str, FetchOutcome] = dict(_previous_images(IngestLayout(config.out), store))
    wanted = list(dict.fromkeys(p.image_source for p in candidates))
    todo = [s for s in wanted if s not in outcomes]
    counts = report.images
    counts.sources = len(wanted)
    counts.reused = len(wanted) - len(todo)
    stats = fetch_images(todo, store, config.fetch, outcomes.__setitem__, progress=config.progress, total=len(todo))
    counts.fetched = stats.sources
    counts.failed = stats.failed
    counts.attempts = stats.attempts
    counts.retries = stats.retries
    counts.stored_new = stats.images_stored
    counts.bytes_downloaded = stats.bytes_downloaded
    counts.bytes_stored = stats.bytes_stored
    report.images_per_second = round(stats.images_per_second, 2)
    return outcomes


def run(config: IngestConfig) -> IngestReport:
    """Ingest one shard of a catalog into ``config.out``.

    Raises:
        FileNotFoundError / ValueError: bad configuration or missing input, naming the flag.
    """
    layout = IngestLayout(config.out)
    report = IngestReport(config.catalog, config.out, config.format, config.shard_index, config.num_shards)
    timings = Timings()
    with timings.phase("read"):
        candidates, rejects = _read(config, report)
    store = ImageStore(layout)
    with timings.phase("fetch"):
        outcomes = _fetch(config, candidates, store, report)
    rows = []
    for product in candidates:
        outcome = outcomes[product.image_source]
        if isinstance(outcome, FetchFailure):
            rejects.append(Reject(product.product_id, outcome.reason,
                                  f"{product.image_source}: {outcome.detail}"))
        else:
            rows.append(_product_row(product, outcome))
    report.tally(len(rows), [r.reason.value for r in rejects])
    with timings.phase("write"):
        uri.makedirs(config.out)
        uri.write_parquet(rejects_table(rejects, STAGE), layout.rejects)
        uri.write_parquet(from_rows(rows, PRODUCTS), layout.products)
    report.set_timings(timings)
    write_report(report, config.out)
    return report
