"""``ecom-kfp dedupe``: the dedupe stage from a shell."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import bad_input, reject_lines
from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.settings import add_arguments, from_args

DESCRIPTION = """Find exact and near-duplicate products in an ingest output and keep one per group.

Rules: identical normalised titles, identical image bytes (SHA-256), e-CLIP colour-grid key
(5x5 mean colours + image size), perceptual hash (pHash) within --near-threshold bits, checked
with a 256-bit pHash and 8x8 colour thumbnails (--near-verify-bits, --near-colour-tolerance), and
optionally image embeddings (--embedding-model) within --embedding-threshold cosine similarity
(exact blocked search, quadratic in the number of products: for up to about a million).
Kept product of a group: most image pixels, then most complete metadata (title, brand, price,
category path, business value), then smallest product_id. Writes products.parquet (kept, with
group_id/group_size), duplicates.parquet, rejects.parquet, samples.html and report.json to --out."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dedupe`` verb; its flags come from :class:`DedupeConfig`."""
    parser = subparsers.add_parser("dedupe", help="find exact and near duplicate products, keep one per group",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, DedupeConfig)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the stage and print a human summary."""
    from ecom_kfp.dedupe.stage import run

    config = from_args(DedupeConfig, args)
    try:
        report = run(config)
    except (ValueError, FileNotFoundError) as err:
        return bad_input("dedupe", err)
    print(f"dedupe: {report.message}")
    for name, rule in report.rules.items():
        state = "on " if rule.enabled else "off"
        print(f"  {name:<7} {state} matched {rule.matched_products:>8} products in {rule.groups:>7} "
              f"groups; explains {rule.dropped} dropped")
    print(f"  transitive-only duplicates: {report.dropped_transitive}")
    for line in reject_lines(report.rejects_by_reason):
        print(line)
    print(f"  hashing: {report.images_per_second:,.0f} images/s; total {sum(report.seconds.values()):.1f} s")
    print(f"  outputs: {config.out_uri} (samples.html to judge groups by eye)")
    return 0
