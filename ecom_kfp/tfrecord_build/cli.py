"""``ecom-kfp tfrecord-build``: the TFRecord build stage from a shell."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import add_progress_flag, bad_input, reject_lines
from ecom_kfp.contracts.features import JPEG_QUALITY, RESIZE_MODES
from ecom_kfp.tfrecord_build.config import DOC2VEC_INFER_EPOCHS

DESCRIPTION = """Turn a dedupe output into training data: train/val/test GZIP TFRecord shards split by
duplicate group (no group crosses splits), label vocabularies per taxonomy level with rare classes
folded into 'other', a SentencePiece model and a Doc2Vec model of the training titles, and
manifest.json (feature spec, counts per split and class, versions). Products whose image no
longer decodes go to rejects.parquet with a reason. Fan out with --shard-index/--num-shards and
join the pieces with --merge-pieces."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tfrecord-build`` verb."""
    p = subparsers.add_parser("tfrecord-build", help="split, label, embed titles and write TFRecord shards",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--products", metavar="URI",
                   help="dedupe output directory or gs:// prefix (holds products.parquet), or the Parquet file")
    p.add_argument("--out", required=True, metavar="URI", help="output directory or gs:// prefix for the dataset")
    p.add_argument("--image-size", type=int, default=224, metavar="PX",
                   help="side of the stored square images (default: %(default)s)")
    p.add_argument("--resize-mode", choices=RESIZE_MODES, default="pad",
                   help="keep the whole product with white borders (pad) or centre-crop (default: %(default)s)")
    p.add_argument("--jpeg-quality", type=int, default=JPEG_QUALITY, metavar="Q",
                   help="JPEG quality of the stored images, 1-95 (default: %(default)s)")
    p.add_argument("--split-fractions", default="0.7,0.15,0.15", metavar="TRAIN,VAL,TEST",
                   help="shares of the splits, summing to 1 (default: %(default)s)")
    p.add_argument("--stratify", action="store_true",
                   help="split each top-level category on its own at exact shares")
    p.add_argument("--split-salt", default="ecom-kfp", metavar="TEXT",
                   help="mixed into the group hash; change it for another deterministic split (default: %(default)s)")
    p.add_argument("--max-levels", type=int, default=4, metavar="N",
                   help="deepest taxonomy level to label, from 1 (default: %(default)s)")
    p.add_argument("--min-class-count", type=int, default=1, metavar="N",
                   help="classes with fewer training products fold into 'other'; 1 keeps every class seen "
                        "(default: %(default)s)")
    p.add_argument("--taxonomy", default="", metavar="URI",
                   help="Google Product Taxonomy file (taxonomy-with-ids format); needs --taxonomy-mapping")
    p.add_argument("--taxonomy-mapping", default="", metavar="URI",
                   help="TSV of '<source path>\\t<taxonomy id or path>' lines mapping source categories")
    p.add_argument("--spm-vocab-size", type=int, default=8000, metavar="N",
                   help="SentencePiece vocabulary; lowered (and reported) when the titles are too few "
                        "(default: %(default)s)")
    p.add_argument("--doc2vec-dim", type=int, default=64, metavar="D",
                   help="Doc2Vec vector size of the title_vector feature (default: %(default)s)")
    p.add_argument("--doc2vec-epochs", type=int, default=20, metavar="N",
                   help="Doc2Vec training epochs (default: %(default)s)")
    p.add_argument("--doc2vec-infer-epochs", type=int, default=DOC2VEC_INFER_EPOCHS, metavar="N",
                   help="Doc2Vec inference epochs per title vector; benchmarks/bench_tfrecords.py measures "
                        "vector quality against it (default: %(default)s)")
    p.add_argument("--shard-target-mb", type=float, default=64.0, metavar="MB",
                   help="aimed-for size of one shard file in MiB (default: %(default)s)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="shard writer processes; 0 = one per CPU (default: %(default)s)")
    p.add_argument("--shard-index", type=int, default=0, metavar="I",
                   help="this piece of a fan-out, from 0 (default: %(default)s)")
    p.add_argument("--num-shards", type=int, default=1, metavar="N",
                   help="pieces in the fan-out; each writes every N-th shard file (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the text models and record order (default: %(default)s)")
    p.add_argument("--merge-pieces", nargs="+", default=None, metavar="URI",
                   help="instead of building, join these fan-out outputs into --out")
    add_progress_flag(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the stage (or the merge) and print a human summary."""
    from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig, parse_fractions

    try:
        if args.merge_pieces:
            from ecom_kfp.tfrecord_build.merge import merge_pieces

            merged = merge_pieces(args.merge_pieces, args.out)
            print(f"tfrecord-build: merged {merged.pieces} pieces into {args.out}: {merged.records} records "
                  f"({_splits(merged.splits)}), {merged.rejected} rejected")
            return 0
        if not args.products:
            return bad_input("tfrecord-build", "--products is required (unless --merge-pieces)")
        from ecom_kfp.tfrecord_build.stage import run

        config = TFRecordBuildConfig(
            products=args.products, out=args.out, image_size=args.image_size, resize_mode=args.resize_mode,
            jpeg_quality=args.jpeg_quality, split_fractions=parse_fractions(args.split_fractions),
            stratify=args.stratify, split_salt=args.split_salt, max_levels=args.max_levels,
            min_class_count=args.min_class_count, taxonomy=args.taxonomy, taxonomy_mapping=args.taxonomy_mapping,
            spm_vocab_size=args.spm_vocab_size, doc2vec_dim=args.doc2vec_dim, doc2vec_epochs=args.doc2vec_epochs,
            doc2vec_infer_epochs=args.doc2vec_infer_epochs,
            shard_target_mb=args.shard_target_mb, workers=args.workers, shard_index=args.shard_index,
            num_shards=args.num_shards, seed=args.seed, progress=args.progress)
        report = run(config)
    except (ValueError, FileNotFoundError) as err:
        return bad_input("tfrecord-build", err)
    print(f"tfrecord-build: {report.records} of {report.input_products} products written to {args.out} "
          f"({_splits(report.splits)}); {report.rejected} rejected"
          + (f", {report.in_other_pieces} left to other pieces" if report.in_other_pieces else ""))
    for line in reject_lines(report.rejected_by_reason):
        print(line)
    for level in range(1, report.num_levels + 1):
        key = f"level_{level}"
        folded = report.folding["levels"][key]
        golden = report.golden_test[key]
        print(f"  {key}: {report.classes[key]} classes (+other), {len(folded['folded_classes'])} folded "
              f"({folded['folded_train_records']} train products); golden test covers {golden['covered']}"
              f"/{golden['classes']}")
    text = report.text
    lowered = f" (lowered from {text['spm_vocab_size_requested']})" if text["spm_vocab_lowered"] else ""
    print(f"  text: SentencePiece {text['spm_vocab_size']} pieces{lowered}; Doc2Vec dim {text['doc2vec_dim']} "
          f"over {text['doc2vec_pieces']} pieces")
    if report.taxonomy:
        print(f"  taxonomy: {report.taxonomy['mapped']} mapped, {report.taxonomy['unmapped']} unmapped (-> other)")
    print(f"  shards: {_splits(report.shards)} files, {report.bytes / 2**20:.1f} MiB; "
          f"{report.records_per_second:,.0f} records/s with {report.workers} workers; "
          f"total {sum(report.seconds.values()):.1f} s")
    return 0


def _splits(values: dict[str, int]) -> str:
    return ", ".join(f"{split} {n}" for split, n in values.items())
