"""``ecom-kfp demo-catalog``: write the demo catalog, optionally serve its images until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from ecom_kfp import uri
from ecom_kfp.cli_support import add_progress_flag, bad_input
from ecom_kfp.demo.generate import DemoCatalogConfig, DemoCatalogReport, generate
from ecom_kfp.demo.serve import serve_directory


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo-catalog`` verb."""
    parser = subparsers.add_parser(
        "demo-catalog",
        help="write the deterministic demo catalog (and serve it)",
        description="Write a deterministic demo catalog (catalog.jsonl, drawn images/, "
                    "business_value.csv, truth.json, report.json) with planted duplicates, dead "
                    "links, broken images, malformed lines and wrong categories; optionally serve images/ over HTTP "
                    "on 127.0.0.1 until Ctrl-C.",
    )
    defaults = DemoCatalogConfig(out="")
    parser.add_argument("--out", required=True, help="output directory or gs:// prefix")
    parser.add_argument("--products", type=int, default=defaults.products,
                        help=f"catalog lines to write, faulty ones included (default {defaults.products})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="random seed; the same seed writes byte-identical files (default %(default)s)")
    parser.add_argument("--image-size", type=int, default=defaults.image_size,
                        help="side of the square product photos in pixels (default %(default)s)")
    parser.add_argument("--fault-rate", type=float, default=defaults.fault_rate,
                        help="fraction of products planted with each single-product defect "
                             "(default %(default)s)")
    parser.add_argument("--duplicate-rate", type=float, default=defaults.duplicate_rate,
                        help="exact, near and repeated-title duplicate groups per product, each "
                             "(default %(default)s)")
    parser.add_argument("--label-error-rate", type=float, default=defaults.label_error_rate,
                        help="fraction of products given the category of a class under another level-1 "
                             "category than their title and image show (default %(default)s; 0 = none)")
    parser.add_argument("--serve", action="store_true",
                        help="after writing, serve images/ on http://127.0.0.1:PORT/ until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="port for --serve (default: a free one)")
    add_progress_flag(parser)
    parser.set_defaults(func=run)


def summary(report: DemoCatalogReport) -> str:
    """The human summary printed at the end of a run."""
    planted = "\n".join(f"    {kind.replace('_', ' '):<26} {count}" for kind, count in report.planted.items())
    return (
        f"demo catalog written to {report.out} in {report.seconds:.1f}s "
        f"({report.products_per_second:.0f} products/s)\n"
        f"  {report.catalog}: {report.products} lines ({report.malformed_lines} malformed)\n"
        f"  {report.images}: {report.images_written} files, {report.image_bytes / 1e6:.1f} MB\n"
        f"  {report.leaf_classes} leaf classes, tree depth {report.tree_depth}\n"
        f"  planted (products, or groups for duplicates):\n{planted}\n"
        f"  where each is: {report.truth}\n"
        f"  business value per class: {report.business_value}"
    )


def run(args: argparse.Namespace) -> int:
    """Generate, print the summary, and serve when asked; 2 on a bad flag."""
    config = DemoCatalogConfig(out=args.out, products=args.products, seed=args.seed,
                               image_size=args.image_size, fault_rate=args.fault_rate,
                               duplicate_rate=args.duplicate_rate, label_error_rate=args.label_error_rate,
                               progress=args.progress)
    try:
        config.validate()
        if args.serve and uri.is_gcs(args.out):
            raise ValueError(f"--serve needs a local --out, got --out={args.out!r}")
        if not 0 <= args.port <= 65535:
            raise ValueError(f"--port={args.port!r}: must be within 0..65535")
    except ValueError as err:
        return bad_input("demo-catalog", err)
    report = generate(config)
    print(summary(report))
    if not args.serve:
        print(f"next: ecom-kfp ingest --catalog {report.catalog} --images-base {report.images} --allow-local-files "
              "--out OUT")
        return 0
    with serve_directory(report.images, port=args.port) as base_url:
        print(f"serving {report.images} at {base_url} (Ctrl-C to stop)")
        print(f"next: ecom-kfp ingest --catalog {report.catalog} --images-base {base_url} --allow-private-networks "
              "--out OUT",
              flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped serving")
    return 0
