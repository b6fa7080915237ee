"""Merge the outputs of ingest shards into one ingest layout (the gather after a fan-out).

Products and rejects are concatenated, images copied into the merged content-addressed store
(each file once, skipping what is already there) and ``image_uri`` rewritten to point into it.
Shards of one catalog never share a product id; if shards of overlapping inputs do, the first
shard's row is kept and later ones become ``duplicate_product_id`` rejects, so the merged counts
still add up: accepted + rejected = the shards' input records.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import pyarrow as pa
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.commit import output_lock
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.contracts.tables import PRODUCTS, REJECTS, Reject, conform, rejects_table
from ecom_kfp.ingest.reasons import STAGE, Reason
from ecom_kfp.ingest.stage import ImageCounts, IngestCounts, publish
from ecom_kfp.report import Timings

_COPY_THREADS = 16


@dataclass
class MergeReport(IngestCounts):
    """``report.json`` of a merged ingest output.

    ``images_per_second`` is the sum of the shards' rates: shards run side by side, so that is the
    fan-out's throughput.
    """

    shards: list[str]
    images_copied: int = 0


def _copy_images(shard: IngestLayout, merged: IngestLayout, progress: bool) -> int:
    merged_existing = set(uri.relative_files(merged.images)) if uri.exists(merged.images) else set()
    todo = [rel for rel in uri.relative_files(shard.images) if rel not in merged_existing]

    def copy(rel: str) -> None:
        parts = rel.split("/")
        uri.copy(uri.join(shard.images, *parts), uri.join(merged.images, *parts))

    with ThreadPoolExecutor(_COPY_THREADS) as pool:
        list(tqdm(pool.map(copy, todo), total=len(todo), desc="copy images", unit="img",
                  disable=not progress, mininterval=0.5))
    return len(todo)


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
    products: list[pa.Table] = []
    rejects: list[pa.Table] = []
    seen: set[str] = set()
    with timings.phase("merge"):
        for shard_uri in shard_uris:
            shard = IngestLayout(shard_uri)
            if not uri.exists(shard.report):
                raise FileNotFoundError(f"shard {shard_uri} has no {shard.report}: it did not complete")
            shard_report = uri.read_json(shard.report)
            report.input_records += shard_report["input_records"]
            report.catalog_truncated |= bool(shard_report["catalog_truncated"])
            report.images_per_second += shard_report["images_per_second"]
            for name in (f.name for f in fields(ImageCounts)):
                setattr(report.images, name, getattr(report.images, name) + shard_report["images"][name])
            report.images_copied += _copy_images(shard, merged, progress)
            table = conform(uri.read_parquet(shard.products), PRODUCTS)
            ids = table.column("product_id").to_pylist()
            keep = []
            for pid in ids:
                keep.append(pid not in seen)
                seen.add(pid)
            dupes = [Reject(pid, Reason.DUPLICATE_PRODUCT_ID, f"also in an earlier shard than {shard_uri}")
                     for pid, kept in zip(ids, keep) if not kept]
            rejects.append(rejects_table(dupes, STAGE))
            rejects.append(conform(uri.read_parquet(shard.rejects), REJECTS))
            table = table.filter(pa.array(keep, pa.bool_()))
            shas = table.column("image_sha256").to_pylist()
            table = table.set_column(table.schema.get_field_index("image_uri"), "image_uri",
                                     pa.array([merged.image(s) for s in shas], pa.string()))
            products.append(table)
        all_products = pa.concat_tables(products)
        all_rejects = pa.concat_tables(rejects)
        report.images_per_second = round(report.images_per_second, 2)
        report.tally(all_products.num_rows, all_rejects.column("reason").to_pylist())
    publish(out, products=conform(all_products, PRODUCTS), rejects=all_rejects, report=report, timings=timings)
    return report
