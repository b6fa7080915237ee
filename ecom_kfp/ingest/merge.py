"""Merge the outputs of ingest shards into one ingest layout (the gather after a fan-out).

Products and rejects are concatenated, images copied into the merged content-addressed store
(each file once, skipping what is already there) and ``image_uri`` rewritten to point into it.
Shards of one catalog never share a product id; if shards of overlapping inputs do, the first
shard's row is kept and later ones become ``duplicate_product_id`` rejects, so the merged counts
still add up: accepted + rejected = the shards' input records.

The merge streams: tables are read and written :data:`BATCH_ROWS` rows at a time, and the product
ids and image names seen so far live in a local sqlite3 scratch table (as in ingest,
:mod:`ecom_kfp.ingest.scratch`), so its memory does not grow with the catalog it gathers.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.commit import output_lock, staged_commit
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.contracts.tables import PRODUCTS, REJECTS, Reject, conform, rejects_table
from ecom_kfp.ingest.reasons import STAGE, Reason
from ecom_kfp.ingest.scratch import ScratchDb, SeenIds
from ecom_kfp.ingest.stage import ImageCounts, IngestCounts
from ecom_kfp.report import Timings, write_report
from ecom_kfp.scratch import scratch_dir

_COPY_THREADS = 16
#: Rows of a shard's table read, rewritten and written at a time.
BATCH_ROWS = 65_536


@dataclass
class MergeReport(IngestCounts):
    """``report.json`` of a merged ingest output.

    ``images_per_second`` is the sum of the shards' rates: shards run side by side, so that is the
    fan-out's throughput.
    """

    shards: list[str]
    images_copied: int = 0


def _copy_images(shard: IngestLayout, merged: IngestLayout, stored: SeenIds, progress: bool) -> int:
    """Copy the shard's images the merged store does not hold yet (``stored`` names those it holds)."""
    todo = [rel for rel in uri.relative_files(shard.images) if stored.add(rel)]

    def copy(rel: str) -> None:
        parts = rel.split("/")
        uri.copy(uri.join(shard.images, *parts), uri.join(merged.images, *parts))

    with ThreadPoolExecutor(_COPY_THREADS) as pool:
        list(tqdm(pool.map(copy, todo), total=len(todo), desc="copy images", unit="img",
                  disable=not progress, mininterval=0.5))
    return len(todo)


def _batches(table_uri: str, schema: pa.Schema):
    """The rows of the Parquet file at ``table_uri`` as tables of :data:`BATCH_ROWS`, conformed to ``schema``."""
    with uri.local_copy(table_uri) as path:
        for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS):
            yield conform(pa.Table.from_batches([batch]), schema)


def merge_shards(shard_uris: list[str], out: str, progress: bool = True) -> MergeReport:
    """Merge ingest outputs ``shard_uris`` into ``out``, holding the lock on ``out`` throughout.

    Raises:
        ValueError: no shards given, or another run is writing ``out``. FileNotFoundError: a shard
            lacks its report (it did not finish).
    """
    if not shard_uris:
        raise ValueError("--merge-shards needs at least one shard output")
    with output_lock(out):
        return _merge(shard_uris, out, progress)


def _merge(shard_uris: list[str], out: str, progress: bool) -> MergeReport:
    merged = IngestLayout(out)
    report = MergeReport(list(shard_uris))
    timings = Timings()
    accepted, reasons = 0, Counter()
    # Written straight into the commit's staging prefix (through a local directory for gs://):
    # nothing is published unless the accounting holds.
    with staged_commit(out) as staging, scratch_dir("merge") as scratch:
        with uri.local_output_dir(staging) as tables, timings.phase("merge"):
            db = ScratchDb(scratch)
            seen, stored = SeenIds(db), SeenIds(db, "images")
            if uri.exists(merged.images):  # a re-run keeps what an earlier one copied
                for rel in uri.relative_files(merged.images):
                    stored.add(rel)
            staged = IngestLayout(tables)
            with pq.ParquetWriter(staged.products, PRODUCTS, compression="zstd") as products, \
                    pq.ParquetWriter(staged.rejects, REJECTS, compression="zstd") as rejects:
                for shard_uri in shard_uris:
                    shard = IngestLayout(shard_uri)
                    if not uri.exists(shard.report):
                        raise FileNotFoundError(f"shard {shard_uri} has no {shard.report}: it did not complete")
                    _add_counts(report, uri.read_json(shard.report))
                    report.images_copied += _copy_images(shard, merged, stored, progress)
                    for table in _batches(shard.products, PRODUCTS):
                        ids = table.column("product_id").to_pylist()
                        keep = [seen.add(pid) for pid in ids]
                        dupes = [Reject(pid, Reason.DUPLICATE_PRODUCT_ID, f"also in an earlier shard than {shard_uri}")
                                 for pid, kept in zip(ids, keep, strict=True) if not kept]
                        if dupes:
                            rejects.write_table(rejects_table(dupes, STAGE))
                            reasons[Reason.DUPLICATE_PRODUCT_ID.value] += len(dupes)
                        table = table.filter(pa.array(keep, pa.bool_()))
                        shas = table.column("image_sha256").to_pylist()
                        table = table.set_column(table.schema.get_field_index("image_uri"), "image_uri",
                                                 pa.array([merged.image(s) for s in shas], pa.string()))
                        products.write_table(table)
                        accepted += table.num_rows
                    for table in _batches(shard.rejects, REJECTS):
                        rejects.write_table(table)
                        reasons.update(table.column("reason").to_pylist())
            db.close()
        report.images_per_second = round(report.images_per_second, 2)
        report.tally(accepted, reasons.elements())
        report.set_timings(timings)
        write_report(report, staging)
    return report


def _add_counts(report: MergeReport, shard: dict) -> None:
    """Add one shard's ``report.json`` counts to the merged report."""
    report.input_records += shard["input_records"]
    report.catalog_truncated |= bool(shard["catalog_truncated"])
    report.images_per_second += shard["images_per_second"]
    for name in (f.name for f in fields(ImageCounts)):
        setattr(report.images, name, getattr(report.images, name) + shard["images"][name])
