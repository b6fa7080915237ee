"""``ecom-kfp ingest``: the ingest stage from a shell (same config as the KFP component)."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import add_stage_verb, bad_input, reject_lines
from ecom_kfp.ingest.config import IngestConfig
from ecom_kfp.settings import from_args

DESCRIPTION = """Read a product catalog, fetch and check every image, and write products.parquet,
rejects.parquet, images/<sha[:2]>/<sha>.jpg and report.json under --out. With --merge-shards,
merge shard outputs instead.

Image sources follow a policy safe for merchant catalogs: http(s) to public addresses only;
local files (--allow-local-files), non-public addresses (--allow-private-networks) and gs://
buckets (--allow-gcs-buckets) only when allowed. Every refused source is a reject with its reason."""


def register(subparsers) -> None:
    """Add the ``ingest`` verb; its flags come from :class:`IngestConfig`."""
    parser = add_stage_verb(subparsers, "ingest", "read a catalog, fetch images, write a clean products table",
                            DESCRIPTION, IngestConfig, main)
    parser.add_argument("--merge-shards", nargs="+", metavar="SHARD_URI", default=None,
                        help="merge these shard outputs into --out instead of reading a catalog")


def summary(report) -> str:
    """Human summary of an ingest (or merge) report."""
    lines = [f"ingest: {report.input_records} records -> {report.accepted} accepted, "
             f"{report.rejected} rejected"]
    if report.catalog_truncated:
        lines.append("  WARNING: the catalog file is truncated (compressed stream cut off)")
    lines.extend(reject_lines(report.rejects_by_reason))
    images = report.images
    lines.append(f"images: {images.sources} distinct, {images.fetched} fetched, {images.reused} reused, "
                 f"{images.failed} failed, {images.retries} retries, {images.stored_new} new files, "
                 f"{images.bytes_downloaded / 1e6:.1f} MB downloaded, {report.images_per_second:.1f} images/s")
    lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items()))
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run the verb; exit 2 on bad configuration or missing input, 0 otherwise."""
    from ecom_kfp.ingest.merge import merge_shards
    from ecom_kfp.ingest.stage import run

    try:
        if args.merge_shards:
            report = merge_shards(args.merge_shards, args.out, progress=args.progress)
        else:
            report = run(from_args(IngestConfig, args))
    except (ValueError, FileNotFoundError) as err:
        return bad_input("ingest", err)
    print(summary(report))
    print(f"wrote {args.out} (report.json, products.parquet, rejects.parquet, images/)")
    return 0
