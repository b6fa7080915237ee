"""``ecom-kfp dedupe``: the dedupe stage from a shell."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import add_stage_verb, bad_input, reject_lines
from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.settings import from_args

DESCRIPTION = """Find products that are copies of each other in an ingest output: remove the copies, and
group near-copies so the TFRecord build keeps each group inside one split.

Removal needs image evidence that the products are one: byte-identical images (SHA-256), or the
same normalised title with pictures within --title-near-threshold pHash bits and
--title-colour-tolerance levels (with --near-removes, also near-identical pictures alone) - and
never when the products' category paths or --variant-columns (colour, gender, size, ...) differ.
Every removed product matches its kept product directly (no chains). Leak groups (split_group)
are generous: identical titles, e-CLIP colour-grid keys, near pictures (pHash within
--near-threshold), optional image embeddings (--embedding-model, exact blocked search, quadratic:
for up to about a million) and every removal match, unioned. Byte-identical pictures of products
of different categories are label conflicts: kept, marked label_conflict, listed.
Kept product of a group: most image pixels, then most complete metadata (title, brand, price,
category path, business value), then smallest product_id. Writes products.parquet (kept, with
group_id, group_size, split_group, label_conflict), duplicates.parquet, rejects.parquet,
samples.html and report.json to --out. See docs/dedupe.md."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dedupe`` verb; its flags come from :class:`DedupeConfig`."""
    add_stage_verb(subparsers, "dedupe", "find exact and near duplicate products, keep one per group",
                   DESCRIPTION, DedupeConfig, main)


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
        print(f"  {name:<11} {state} {rule.role:<23} matched {rule.matched_products:>8} products; "
              f"removed {rule.dropped}; vetoed {rule.vetoed_pairs} pairs (labels differ)")
    for line in reject_lines(report.rejects_by_reason):
        print(line)
    print(f"  hashing: {report.images_per_second:,.0f} images/s; total {sum(report.seconds.values()):.1f} s")
    print(f"  outputs: {config.out_uri} (samples.html to judge groups by eye)")
    return 0
