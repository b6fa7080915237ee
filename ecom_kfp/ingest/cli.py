"""``ecom-kfp ingest``: the ingest stage from a shell (same config as the KFP component)."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import add_progress_flag, bad_input, reject_lines
from ecom_kfp.ingest.image_check import ImageLimits
from ecom_kfp.ingest.readers import FORMATS

_DEFAULT_LIMITS = ImageLimits()


def register(subparsers) -> None:
    """Add the ``ingest`` verb."""
    parser = subparsers.add_parser(
        "ingest", help="read a catalog, fetch images, write a clean products table",
        description="Read a product catalog, fetch and check every image, and write products.parquet, "
                    "rejects.parquet, images/<sha[:2]>/<sha>.jpg and report.json under --out. "
                    "With --merge-shards, merge shard outputs instead.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--catalog", help="catalog file: local path or gs:// URI (gzip is detected)")
    parser.add_argument("--out", required=True, help="output directory or gs:// prefix")
    parser.add_argument("--format", default="auto", choices=FORMATS,
                        help="catalog format; auto guesses from the name and the first record")
    parser.add_argument("--column-map", default="",
                        help="FIELD=COLUMN,... mapping catalog columns to products fields; "
                             "a>b>c builds a category path from several columns, a|b takes the first "
                             "non-empty, e.g. product_id=id,title=productDisplayName,"
                             "category_path=masterCategory>subCategory>articleType,image_url=image")
    parser.add_argument("--images-base", default="",
                        help="URL, gs:// prefix or directory that relative image references resolve "
                             "against (default: the catalog's directory)")
    parser.add_argument("--business-value", default="",
                        help="per-category value table (CSV category_path,business_value, JSON or Parquet); "
                             "products in categories it does not list are rejected as unknown_category")
    parser.add_argument("--shard-index", type=int, default=0, help="this shard (0-based)")
    parser.add_argument("--num-shards", type=int, default=1, help="shards the catalog is split into")
    parser.add_argument("--concurrency", type=int, default=64, help="images in flight at once")
    parser.add_argument("--per-host", type=int, default=16, help="concurrent requests to one host")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per download attempt")
    parser.add_argument("--max-retries", type=int, default=2,
                        help="retries after a timeout, reset, truncated transfer, 429 or 5xx")
    parser.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds (doubles)")
    parser.add_argument("--io-threads", type=int, default=16,
                        help="threads reading local and gs:// sources, and checking and storing images over "
                             "16 KiB or bound for a gs:// store (smaller ones are checked on the event loop)")
    parser.add_argument("--fetch-processes", type=int, default=1,
                        help="worker processes fetching images, each with its own event loop and a share of "
                             "--concurrency, --per-host and --io-threads; 1 (default) = fetch in this process, "
                             "whose --io-threads already decode large images on every core; 0 = one per available "
                             "CPU, for machines where one event loop saturates its core")
    parser.add_argument("--min-image-side", type=int, default=_DEFAULT_LIMITS.min_side,
                        help="reject images whose shorter side is below this many pixels")
    parser.add_argument("--max-image-bytes", type=int, default=_DEFAULT_LIMITS.max_bytes,
                        help="reject images larger than this")
    parser.add_argument("--min-title-tokens", type=int, default=3,
                        help="reject titles with fewer tokens once special characters are spaces")
    add_progress_flag(parser)
    parser.add_argument("--merge-shards", nargs="+", metavar="SHARD_URI", default=None,
                        help="merge these shard outputs into --out instead of reading a catalog")
    parser.set_defaults(func=main)


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
    from ecom_kfp.ingest.fetch import FetchConfig
    from ecom_kfp.ingest.merge import merge_shards
    from ecom_kfp.ingest.stage import IngestConfig, run

    progress = args.progress
    try:
        if args.merge_shards:
            report = merge_shards(args.merge_shards, args.out, progress=progress)
        elif not args.catalog:
            raise ValueError("--catalog is required (or --merge-shards)")
        else:
            limits = ImageLimits(min_side=args.min_image_side, max_bytes=args.max_image_bytes)
            fetch = FetchConfig(concurrency=args.concurrency, per_host=args.per_host,
                                timeout_seconds=args.timeout, max_retries=args.max_retries,
                                backoff_seconds=args.backoff, io_threads=args.io_threads,
                                processes=args.fetch_processes, limits=limits)
            report = run(IngestConfig(
                catalog=args.catalog, out=args.out, format=args.format, column_map=args.column_map,
                images_base=args.images_base, business_value_uri=args.business_value,
                shard_index=args.shard_index, num_shards=args.num_shards,
                min_title_tokens=args.min_title_tokens, fetch=fetch, progress=progress))
    except (ValueError, FileNotFoundError) as err:
        return bad_input("ingest", err)
    print(summary(report))
    print(f"wrote {args.out} (report.json, products.parquet, rejects.parquet, images/)")
    return 0
