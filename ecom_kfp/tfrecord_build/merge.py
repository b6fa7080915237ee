"""The gather of a TFRecord build (``--step merge``): a plan and all its write pieces become one
:class:`~ecom_kfp.contracts.layouts.DatasetLayout` with one ``manifest.json``.

Shard files already carry their global names and are copied as they are (not at all when a piece
was written in place, as ``--step all`` does). Pieces must come from the same plan (the SHA-256 of
its ``plan.json``) and together cover every shard file exactly once, and each file must have the
SHA-256 its piece recorded; that is checked, not assumed. Label counts and ``other`` records are
summed over the files; rejects are the plan's (before writing) and the pieces' (image failures).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ecom_kfp import uri
from ecom_kfp.contracts import labels as label_files
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.digests import file_sha256
from ecom_kfp.contracts.labels import Vocabulary
from ecom_kfp.contracts.layouts import BuildPieceLayout, BuildPlanLayout, DatasetLayout
from ecom_kfp.report import check_accounting, write_report
from ecom_kfp.tfrecord_build import manifest as manifest_keys
from ecom_kfp.tfrecord_build.config import SPLITS
from ecom_kfp.tfrecord_build.global_step import read_plan
from ecom_kfp.tfrecord_build.labels import OtherReason
from ecom_kfp.tfrecord_build.rejects import STAGE


class MergeError(ValueError):
    """The pieces do not form one complete fan-out of the plan."""


@dataclass
class TFRecordBuildReport:
    """``report.json`` of the TFRecord build (one process, or a plan, its pieces and their merge).

    Attributes:
        input_products: Rows of the products table.
        records: Records written (all splits).
        rejected: Products rejected, and ``rejected_by_reason`` per reason code.
        splits: Records written per split.
        split_products: Products assigned to each split (whole input, before image failures).
        num_levels: Label levels; ``classes`` per level excluding ``other``.
        folding: Folded classes per level and ``other`` records per split, level and reason.
        golden_test: The test split's size and, per level, classes it covers and misses.
        text: SentencePiece and Doc2Vec facts (vocabulary lowered or not; training titles used of the
            train split, sampled or not).
        taxonomy: Mapped and unmapped products when a taxonomy mapping was used.
        shards: Files written per split, and their total ``bytes``.
        num_shards: Write pieces; ``workers`` writer processes per piece.
        records_per_second: Records written per second of the write phases' wall time (summed over pieces).
        shard_seconds: Time the writers spent inside shard files, summed over files; records per
            such second (``records_per_process_second``) is the per-core rate once processes run.
        seconds: Wall time per phase (the plan's phases, and ``write`` summed over pieces).
    """

    input_products: int
    records: int
    rejected: int
    rejected_by_reason: dict[str, int]
    splits: dict[str, int]
    split_products: dict[str, int]
    num_levels: int
    classes: dict[str, int]
    folding: dict[str, Any]
    golden_test: dict[str, Any]
    text: dict[str, Any]
    taxonomy: dict[str, Any] | None
    shards: dict[str, int]
    bytes: int
    num_shards: int
    workers: int
    records_per_second: float
    shard_seconds: float
    records_per_process_second: float
    seconds: dict[str, float] = field(default_factory=dict)


def merge(plan_root: str, pieces: Sequence[str], out: str) -> TFRecordBuildReport:
    """Gather ``pieces`` of the plan at ``plan_root`` into the dataset at ``out``.

    Raises:
        MergeError: a piece of another plan or fan-out, a piece missing or given twice, a shard file
            missing or not the one its piece wrote.
        DigestError: the plan's labels or text models are not the files it recorded.
    """
    layout = BuildPlanLayout(plan_root)
    plan, expected_id = read_plan(plan_root, "--plan")
    documents = [uri.read_json(BuildPieceLayout(p).piece) for p in pieces]
    for piece, document in zip(pieces, documents, strict=True):
        if document["plan_id"] != expected_id:
            raise MergeError(f"--pieces: {piece} was written from another plan than --plan {plan_root}")
    num_shards = documents[0]["num_shards"]
    indices = sorted(d["shard_index"] for d in documents)
    if indices != list(range(num_shards)) or any(d["num_shards"] != num_shards for d in documents):
        raise MergeError(f"--pieces: got pieces {indices} of {sorted({d['num_shards'] for d in documents})}, "
                         f"expected each of 0..{num_shards - 1} once")
    files = [(piece, entry) for piece, document in zip(pieces, documents, strict=True) for entry in document["files"]]
    written = Counter(entry["split"] for _, entry in files)
    if any(written[s] != plan["files"][s] for s in SPLITS):
        raise MergeError(f"--pieces: they hold shard files {dict(written)}, the plan has {plan['files']}")
    target = DatasetLayout(out)
    for piece, entry in files:
        source = uri.join(DatasetLayout(piece).split_dir(entry["split"]), entry["name"])
        if not uri.exists(source) or file_sha256(source) != entry["sha256"]:
            raise MergeError(f"--pieces: {source} is missing or not the file its piece wrote (SHA-256 differs)")
        _copy_unless_same(source, uri.join(target.split_dir(entry["split"]), entry["name"]))
    for rel in plan["digests"]:
        _copy_unless_same(uri.join(plan_root, rel), uri.join(out, rel))
    vocabularies = label_files.load_all(target.labels, plan["feature_spec"]["num_levels"])

    # Sorted, so the rejects file does not depend on how the files were spread over pieces.
    rejects = pa.concat_tables([uri.read_parquet(layout.rejects)]
                               + [uri.read_parquet(BuildPieceLayout(p).rejects) for p in pieces]).sort_by("product_id")
    entries = [entry for _, entry in files]
    counts = _counts(entries, vocabularies)
    records = sum(counts[s]["total"] for s in SPLITS)
    check_accounting(STAGE, plan["input_products"], records=records, rejected=rejects.num_rows)
    uri.write_parquet(tables.conform(rejects, tables.REJECTS), target.rejects)
    folding = {**plan["folding"], "other_records": _other_records(entries, len(vocabularies))}
    shard_files = {s: plan["files"][s] for s in SPLITS}
    piece_reports = [uri.read_json(BuildPieceLayout(p).report) for p in pieces]
    for piece in pieces:
        if piece.rstrip("/") == out.rstrip("/"):  # written in place: its bookkeeping is not part of the dataset
            uri.delete(BuildPieceLayout(piece).piece)
    uri.write_json(target.manifest, {
        manifest_keys.FEATURE_SPEC: plan["feature_spec"],
        manifest_keys.COUNTS: counts,
        "folding": folding,
        "splits": plan["splits"],
        "text": plan["text"],
        "taxonomy": plan["taxonomy"],
        "shards": {"files": shard_files, "num_shards": num_shards, "target_mb": plan["target_mb"],
                   "estimated_record_bytes": plan["estimated_record_bytes"]},
        "input": plan["input"],
        "versions": manifest_keys.versions(),
        manifest_keys.DIGESTS: manifest_keys.dataset_digests(out),
    })
    write_seconds = sum(r["seconds"]["write"] for r in piece_reports)
    shard_seconds = sum(entry["seconds"] for entry in entries)
    report = TFRecordBuildReport(
        input_products=plan["input_products"], records=records, rejected=rejects.num_rows,
        rejected_by_reason=dict(Counter(rejects.column("reason").to_pylist())),
        splits={s: counts[s]["total"] for s in SPLITS}, split_products=plan["split_products"],
        num_levels=len(vocabularies), classes={f"level_{v.level}": len(v) - 1 for v in vocabularies},
        folding=folding, golden_test=golden_test_coverage(counts["test"], vocabularies), text=plan["text"],
        taxonomy=plan["taxonomy"], shards=shard_files, bytes=sum(entry["bytes"] for entry in entries),
        num_shards=num_shards, workers=piece_reports[0]["workers"],
        records_per_second=records / write_seconds if write_seconds > 0 else 0.0, shard_seconds=shard_seconds,
        records_per_process_second=records / shard_seconds if shard_seconds > 0 else 0.0,
        seconds={**uri.read_json(layout.report)["seconds"], "write": write_seconds})
    write_report(report, out)
    return report


def _copy_unless_same(src: str, dst: str) -> None:
    if src.rstrip("/") != dst.rstrip("/"):
        uri.copy(src, dst)


def _counts(files: list[dict], vocabularies: Sequence[Vocabulary]) -> dict[str, Any]:
    counts = {}
    for split in SPLITS:
        mine = [f for f in files if f["split"] == split]
        per_level = [sum((Counter({int(k): v for k, v in f["class_counts"][level].items()}) for f in mine), Counter())
                     for level in range(len(vocabularies))]
        counts[split] = manifest_keys.split_counts(sum(f["records"] for f in mine), per_level, vocabularies)
    return counts


def _other_records(files: list[dict], num_levels: int) -> dict[str, dict[str, dict[str, int]]]:
    return {split: {f"level_{level + 1}": {reason.value: sum(f["other_reasons"][level].get(reason.value, 0)
                                                             for f in files if f["split"] == split)
                                           for reason in OtherReason} for level in range(num_levels)}
            for split in SPLITS}


def golden_test_coverage(test_counts: dict[str, Any], vocabularies: Sequence[Vocabulary]) -> dict[str, Any]:
    """The test split's size and, per level, how many of the vocabulary's classes it has records of."""
    coverage: dict[str, Any] = {"records": test_counts["total"]}
    for vocabulary in vocabularies:
        key = f"level_{vocabulary.level}"
        named = vocabulary.classes[1:]
        missing = [name for name in named if not test_counts[key].get(name)]
        coverage[key] = {"classes": len(named), "covered": len(named) - len(missing), "missing": missing}
    return coverage
