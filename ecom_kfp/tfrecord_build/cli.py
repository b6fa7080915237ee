"""``ecom-kfp tfrecord-build``: the TFRecord build stage from a shell."""

from __future__ import annotations

import argparse

from ecom_kfp.cli_support import add_stage_verb, bad_input, reject_lines
from ecom_kfp.settings import from_args
from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig

DESCRIPTION = """Turn a dedupe output into training data: train/val/test GZIP TFRecord shards split by
duplicate group (no group crosses splits), label vocabularies per taxonomy level with rare classes
folded into 'other', a SentencePiece model and a Doc2Vec model of the training titles, and
manifest.json (feature spec, counts per split and class, versions). Products whose image no
longer decodes go to rejects.parquet with a reason. Fan out over pods with --step plan (once),
--step write --shard-index I --num-shards N (each piece) and --step merge --pieces ... (once)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tfrecord-build`` verb; its flags come from :class:`TFRecordBuildConfig`."""
    add_stage_verb(subparsers, "tfrecord-build", "split, label, embed titles and write TFRecord shards",
                   DESCRIPTION, TFRecordBuildConfig, main)


def main(args: argparse.Namespace) -> int:
    """Run the stage (or one step of it) and print a human summary."""
    from ecom_kfp.tfrecord_build.global_step import PlanReport
    from ecom_kfp.tfrecord_build.shard_step import PieceReport
    from ecom_kfp.tfrecord_build.stage import run

    try:
        report = run(from_args(TFRecordBuildConfig, args))
    except (ValueError, FileNotFoundError) as err:
        return bad_input("tfrecord-build", err)
    if isinstance(report, PlanReport):
        text = report.text
        print(f"tfrecord-build plan: {report.planned_records} of {report.input_products} products planned in "
              f"{_splits(report.files)} shard files; {report.rejected} rejected; text models on "
              f"{text['training_titles']} of {text['train_products']} training titles")
        return 0
    if isinstance(report, PieceReport):
        print(f"tfrecord-build write: piece {report.shard_index} of {report.num_shards} wrote {report.records} of "
              f"{report.planned} planned records ({_splits(report.files)} files); {report.rejected} rejected")
        return 0
    print(f"tfrecord-build: {report.records} of {report.input_products} products written to {args.out} "
          f"({_splits(report.splits)}); {report.rejected} rejected")
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
          f"over {text['doc2vec_pieces']} pieces; trained on {text['training_titles']} of {text['train_products']} "
          "training titles")
    if report.taxonomy:
        print(f"  taxonomy: {report.taxonomy['mapped']} mapped, {report.taxonomy['unmapped']} unmapped (-> other)")
    print(f"  shards: {_splits(report.shards)} files, {report.bytes / 2**20:.1f} MiB; "
          f"{report.records_per_second:,.0f} records/s with {report.workers} workers in {report.num_shards} piece(s); "
          f"total {sum(report.seconds.values()):.1f} s")
    return 0


def _splits(values: dict[str, int]) -> str:
    return ", ".join(f"{split} {n}" for split, n in values.items())
