"""The ingest stage: catalog in, ``products.parquet`` + ``rejects.parquet`` + images + report out.

``run(config)`` reads the records of one shard, applies the metadata rules, fetches each distinct
image source once, and writes the :class:`~ecom_kfp.contracts.layouts.IngestLayout`, all as one
stream: records are read as the fetch asks for images and rows are written as images arrive, so
memory is bounded by :data:`WINDOW_PRODUCTS` and the fetch's concurrency, not by the catalog (the
product ids seen and the outcome of each image source, which grow with it, are kept on local disk:
:mod:`ecom_kfp.ingest.scratch`). Every record of the shard ends as exactly one product row or one
reject row (checked before anything is published).
Re-running into the same output is resumable: sources that an earlier run's ``products.parquet``
already resolved to a stored image are not fetched again.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.commit import output_lock, staged_commit
from ecom_kfp.contracts.business_value import BusinessValueTable
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.contracts.tables import PRODUCTS, REJECTS, Reject, from_rows
from ecom_kfp.ingest import sharding, sources
from ecom_kfp.ingest.column_map import ColumnMap
from ecom_kfp.ingest.config import IngestConfig
from ecom_kfp.ingest.download import fetch_images
from ecom_kfp.ingest.fetch import WAIT, FetchedImage, FetchFailure, FetchOutcome
from ecom_kfp.ingest.normalize import CatalogProduct, Normalizer
from ecom_kfp.ingest.readers import BadRecord, open_catalog
from ecom_kfp.ingest.reasons import STAGE, Reason
from ecom_kfp.ingest.scratch import Outcomes, ScratchDb, SeenIds
from ecom_kfp.ingest.store import FetchJournal, ImageStore
from ecom_kfp.report import Timings, check_accounting, write_report
from ecom_kfp.scratch import scratch_dir

log = logging.getLogger(__name__)

#: Candidate products held at most while their images are fetched: with the fetch's own bounds
#: (``--concurrency``), what bounds ingest's memory whatever the catalog's size.
WINDOW_PRODUCTS = 2048
#: Rows per Parquet row group of ``products.parquet`` and ``rejects.parquet`` (rows are buffered
#: until a group is full).
ROW_GROUP_ROWS = 2048
_RESUME_COLUMNS = ["image_url", "image_sha256", "width", "height"]


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

    def tally(self, accepted: int, reject_reasons: Iterable[str]) -> None:
        """Record the accepted and rejected counts, failing unless they add up to ``input_records``."""
        self.accepted = accepted
        by_reason = Counter(reject_reasons)
        self.rejected = by_reason.total()
        self.rejects_by_reason = dict(sorted(by_reason.items()))
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


def _previous_images(config: IngestConfig, store: ImageStore, journal: FetchJournal, db: ScratchDb) -> Outcomes:
    """Sources an earlier run into the output (completed, or killed mid-way) resolved to images still
    stored, that this run's source policy allows (read in batches, not as one table)."""
    known = Outcomes(db, "previous", store)

    def keep(source: str | None, sha: str | None, width: int, height: int) -> None:
        if source and sha and source not in known and config.fetch.policy.refusal(source) is None \
                and store.has(sha):
            known.add(source, FetchedImage(sha, store.uri_of(sha), width, height, 0, 0, False, 0))

    for entry in journal.entries():
        keep(entry["source"], entry["sha256"], entry["width"], entry["height"])
    if uri.exists(store.layout.products):
        with uri.local_copy(store.layout.products) as path:
            for batch in pq.ParquetFile(path).iter_batches(ROW_GROUP_ROWS, columns=_RESUME_COLUMNS):
                for row in batch.to_pylist():
                    keep(*(row[name] for name in _RESUME_COLUMNS))
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


def _records(config: IngestConfig, report: IngestReport, stack: contextlib.ExitStack, seen_ids: SeenIds
             ) -> Iterator[CatalogProduct | Reject]:
    """The shard's records, read as they are asked for, as candidate products and metadata rejects.

    The catalog is opened, and its settings checked, before this returns: bad settings fail here,
    not inside the fetch. Only the product ids go on to ``seen_ids`` (for ``duplicate_product_id``);
    everything else read is handed on.
    """
    values = BusinessValueTable.load(config.business_value_uri) if config.business_value_uri else None
    catalog = stack.enter_context(open_catalog(config.catalog, config.format))
    report.format = catalog.format
    columns = ColumnMap.parse(config.column_map, catalog.default_column_map())
    if catalog.columns:  # fixed header: mistakes in the mapping show before any row is read
        columns = columns.check_columns(catalog.columns)
    normalizer = Normalizer(columns, config.images_base or sources.catalog_dir(config.catalog),
                            values, config.min_title_tokens)

    def read() -> Iterator[CatalogProduct | Reject]:
        for record in tqdm(catalog, desc="catalog", unit="rec", disable=not config.progress, mininterval=0.5):
            pid = None if isinstance(record, BadRecord) else normalizer.product_id(record.fields)
            key = sharding.record_key(pid, record.position)
            if sharding.shard_of(key, config.num_shards) != config.shard_index:
                continue
            report.input_records += 1
            if isinstance(record, BadRecord):
                yield Reject(None, record.reason, f"line {record.position}: {record.detail}")
            elif pid is not None and not seen_ids.add(pid):
                yield Reject(pid, Reason.DUPLICATE_PRODUCT_ID, f"line {record.position} repeats an earlier product id")
            else:
                yield normalizer(record.fields)
        report.catalog_truncated = catalog.truncated
        if report.catalog_truncated:
            log.warning("catalog %s is truncated (compressed stream cut off); read what was there", config.catalog)

    return read()


class _TableWriter:
    """Rows appended one at a time, written to a local Parquet file ``ROW_GROUP_ROWS`` at a time."""

    def __init__(self, path: str, schema: pa.Schema):
        self._schema = schema
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")
        self._rows: list[dict] = []

    def append(self, row: dict) -> None:
        self._rows.append(row)
        if len(self._rows) >= ROW_GROUP_ROWS:
            self._flush()

    def append_file(self, path: str) -> None:
        """Append the rows of a Parquet file of the same schema, a row group at a time."""
        for batch in pq.ParquetFile(path).iter_batches(ROW_GROUP_ROWS):
            for row in batch.to_pylist():
                self.append(row)

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(from_rows(self._rows, self._schema))
            self._rows.clear()

    def close(self) -> None:
        self._flush()
        self._writer.close()


class _Stream:
    """Catalog records in, table rows out, with at most ``window`` products between the two.

    :meth:`sources` reads records as the fetch asks for sources: a metadata reject is written at
    once, a candidate product waits in catalog order for its source's outcome, and each source not
    seen before is handed to the fetch. Once ``window`` products wait (behind a slow source), it
    gives :data:`~ecom_kfp.ingest.fetch.WAIT` until outcomes free some. Rows come out as before the
    stream: products in catalog order, metadata rejects in catalog order followed by image rejects
    in catalog order (kept in a spill file until the end).
    """

    def __init__(self, records: Iterator[CatalogProduct | Reject], outcomes: Outcomes, previous: Outcomes,
                 journal: FetchJournal, tables: str, spill: str, window: int, report: IngestReport):
        self._records = records
        self._outcomes = outcomes
        self._previous = previous
        self._journal = journal
        self._window = window
        self._report = report
        self._waiting: collections.deque[CatalogProduct] = collections.deque()
        self._in_flight: set[str] = set()
        layout = IngestLayout(tables)
        self._spill_path = spill
        self.products = _TableWriter(layout.products, PRODUCTS)
        self.rejects = _TableWriter(layout.rejects, REJECTS)
        self._image_rejects = _TableWriter(spill, REJECTS)
        self.accepted = 0
        self.reasons: Counter[str] = Counter()

    def sources(self) -> Iterator[str]:
        """The sources to fetch, in catalog order of first use; :data:`WAIT` while the window is full."""
        for entry in self._records:
            while len(self._waiting) >= self._window:
                yield WAIT
            if isinstance(entry, Reject):
                self._reject(entry, self.rejects)
                continue
            source = entry.image_source
            self._waiting.append(entry)
            if source not in self._in_flight and source not in self._outcomes:
                self._report.images.sources += 1
                if (reused := self._previous.get(source)) is not None:
                    self._report.images.reused += 1
                    self._outcomes.add(source, reused)
                else:
                    self._in_flight.add(source)
                    yield source
            self._drain()

    def finished(self, source: str, outcome: FetchOutcome) -> None:
        """Record the outcome of a fetched source and write the products that no longer wait."""
        self._in_flight.discard(source)
        self._outcomes.add(source, outcome)
        if isinstance(outcome, FetchedImage):
            self._journal.record(source, outcome.sha256, outcome.width, outcome.height)
        self._drain()

    def _drain(self) -> None:
        # A source in flight has no outcome yet: no need to look it up.
        while self._waiting and self._waiting[0].image_source not in self._in_flight \
                and (outcome := self._outcomes.get(self._waiting[0].image_source)) is not None:
            product = self._waiting.popleft()
            if isinstance(outcome, FetchFailure):
                self._reject(Reject(product.product_id, outcome.reason, f"{product.image_source}: {outcome.detail}"),
                             self._image_rejects)
            else:
                self.products.append(_product_row(product, outcome))
                self.accepted += 1

    def _reject(self, reject: Reject, table: _TableWriter) -> None:
        table.append(reject.row(STAGE))
        self.reasons[reject.reason.value] += 1

    def close(self) -> None:
        """Write what is left; every product must have its outcome by now."""
        self._drain()
        if self._waiting or self._in_flight:
            raise RuntimeError(f"ingest lost image outcomes: {len(self._waiting)} products still wait for "
                               f"{len(self._in_flight)} sources")
        self.products.close()
        self._image_rejects.close()
        self.rejects.append_file(self._spill_path)
        self.rejects.close()


def _ingest(config: IngestConfig, store: ImageStore, tables: str, report: IngestReport) -> _Stream:
    """Stream the shard's records through the image fetch into the tables under local directory ``tables``."""
    journal = FetchJournal(store.layout)
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(scratch_dir("ingest"))
        db = ScratchDb(scratch)
        stack.callback(db.close)
        records = _records(config, report, stack, SeenIds(db))
        previous = _previous_images(config, store, journal, db)
        stream = _Stream(records, Outcomes(db, "outcomes", store), previous, journal, tables,
                         os.path.join(scratch, "image_rejects.parquet"), WINDOW_PRODUCTS, report)
        try:
            stats = fetch_images(stream.sources(), store, config.fetch, stream.finished, progress=config.progress)
        finally:
            journal.close()
        stream.close()
    counts = report.images
    counts.fetched = stats.sources
    counts.failed = stats.failed
    counts.attempts = stats.attempts
    counts.retries = stats.retries
    counts.stored_new = stats.images_stored
    counts.bytes_downloaded = stats.bytes_downloaded
    counts.bytes_stored = stats.bytes_stored
    report.images_per_second = round(stats.images_per_second, 2)
    return stream


def run(config: IngestConfig) -> IngestReport:
    """Ingest one shard of a catalog into ``config.out``.

    The run holds the lock on ``config.out`` throughout, and publishes its tables and report together
    (:mod:`ecom_kfp.commit`); images go straight to the content-addressed store.

    Raises:
        FileNotFoundError / ValueError: bad configuration, missing input or another run writing
            ``--out``, naming the flag.
    """
    with output_lock(config.out):
        return _run(config)


def _run(config: IngestConfig) -> IngestReport:
    # Image paths are stored absolute: from a relative --out, every image_uri of the products table
    # would name an image only from the directory ingest ran in.
    layout = IngestLayout(os.path.abspath(config.out) if uri.is_local(config.out) else config.out)
    report = IngestReport(config.catalog, config.out, config.format, config.shard_index, config.num_shards)
    timings = Timings()
    store = ImageStore(layout)
    # The tables are written as the catalog is read, straight into the commit's staging prefix
    # (through a local directory for gs://): nothing is published unless the accounting holds.
    with staged_commit(config.out) as staging:
        with uri.local_output_dir(staging) as tables:
            with timings.phase("ingest"):
                stream = _ingest(config, store, tables, report)
            report.tally(stream.accepted, stream.reasons.elements())
        report.set_timings(timings)
        write_report(report, staging)
    FetchJournal(layout).clear()  # products.parquet now maps every fetched source
    return report
