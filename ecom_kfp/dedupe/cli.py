"""``ecom-kfp dedupe``: the dedupe stage from a shell."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import add_progress_flag, bad_input, reject_lines
from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.dedupe.grid_hash import DEFAULT_GRID

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
    """Add the ``dedupe`` verb."""
    parser = subparsers.add_parser("dedupe", help="find exact and near duplicate products, keep one per group",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", required=True, metavar="URI",
                        help="ingest output directory or gs:// prefix (holds products.parquet and images/)")
    parser.add_argument("--out", required=True, metavar="URI",
                        help="output directory or gs:// prefix for the dedupe layout")
    parser.add_argument("--near-threshold", type=int, default=6, metavar="BITS",
                        help="max pHash Hamming distance of near-duplicate images (default: %(default)s)")
    parser.add_argument("--near-verify-bits", type=int, default=20, metavar="BITS",
                        help="a pHash match also needs the finer 256-bit pHash within this many bits "
                             "(256 = off) (default: %(default)s)")
    parser.add_argument("--near-colour-tolerance", type=int, default=8, metavar="LEVELS",
                        help="a pHash match also needs every value of the two 8x8 YCbCr colour "
                             "thumbnails within this many levels (0..255; 255 = off), so the same "
                             "studio shot of another colour or shade does not match while resized and "
                             "re-encoded copies do (default: %(default)s)")
    parser.add_argument("--embedding-model", default="", metavar="URI",
                        help="Keras .keras file or SavedModel directory (local or gs://) mapping float32 "
                             "[N,S,S,3] images in 0..255 to vectors; turns on the embedding rule "
                             "(default: off)")
    parser.add_argument("--embedding-threshold", type=float, default=0.97, metavar="COS",
                        help="min cosine similarity of near-duplicate embeddings (default: %(default)s)")
    parser.add_argument("--embedding-batch-size", type=int, default=64, metavar="N",
                        help="images per embedding model call (default: %(default)s)")
    parser.add_argument("--no-title-rule", dest="title_rule", action="store_false",
                        help="do not treat identical normalised titles as duplicates")
    parser.add_argument("--no-sha256-rule", dest="sha256_rule", action="store_false",
                        help="do not treat byte-identical images as duplicates")
    parser.add_argument("--no-grid-rule", dest="grid_rule", action="store_false",
                        help="do not use the e-CLIP colour-grid key")
    parser.add_argument("--no-phash-rule", dest="phash_rule", action="store_false",
                        help="do not search near-duplicate images by perceptual hash")
    parser.add_argument("--grid-cells", type=int, default=DEFAULT_GRID, metavar="N",
                        help="side of the colour grid (default: %(default)s, as in e-CLIP)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="image hashing processes; 0 = one per CPU (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=512, metavar="N",
                        help="images per unit of work sent to a hashing process (default: %(default)s)")
    parser.add_argument("--sample-groups", type=int, default=24, metavar="N",
                        help="duplicate groups shown in samples.html (default: %(default)s)")
    add_progress_flag(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the stage and print a human summary."""
    from ecom_kfp.dedupe.stage import run

    config = DedupeConfig(
        products_uri=args.products, out_uri=args.out, title_rule=args.title_rule,
        sha256_rule=args.sha256_rule, grid_rule=args.grid_rule, phash_rule=args.phash_rule,
        near_threshold=args.near_threshold,
        near_verify_bits=args.near_verify_bits, near_colour_tolerance=args.near_colour_tolerance,
        embedding_model=args.embedding_model, embedding_threshold=args.embedding_threshold,
        embedding_batch_size=args.embedding_batch_size,
        grid_cells=args.grid_cells, workers=args.workers,
        chunk_size=args.chunk_size, sample_groups=args.sample_groups, progress=args.progress)
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
    print(f"  outputs: {args.out} (samples.html to judge groups by eye)")
    return 0
