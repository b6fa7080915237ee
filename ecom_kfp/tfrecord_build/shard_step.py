"""The sharded write step of the TFRecord build (``--step write``): piece ``shard_index`` of
``num_shards`` writes every ``num_shards``-th shard file of a plan (files numbered across the
splits, train first), with the plan's writer settings and its text models read as data, into a
:class:`~ecom_kfp.contracts.layouts.BuildPieceLayout`. Products whose image fails are its rejects.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.features import FeatureSpec
from ecom_kfp.contracts.layouts import BuildPieceLayout, BuildPlanLayout, DatasetLayout
from ecom_kfp.report import Timings, check_accounting, write_report
from ecom_kfp.tfrecord_build.config import SPLITS, TFRecordBuildConfig
from ecom_kfp.tfrecord_build.global_step import read_plan
from ecom_kfp.tfrecord_build.rejects import STAGE
from ecom_kfp.tfrecord_build.writer import ShardResult, WriterSettings, shard_tasks, write_shards


@dataclass
class PieceReport:
    """``report.json`` of one write piece.

    Attributes:
        shard_index: This piece; ``num_shards`` pieces in all.
        planned: Records planned in this piece's files; ``records`` written, ``rejected`` not (per
            reason in ``rejected_by_reason``).
        files: Shard files written per split, and their total ``bytes``.
        workers: Writer processes.
        records_per_second: Records per second of wall time of the write.
        shard_seconds: Time the writers spent inside shard files, summed over files.
        seconds: Wall time per phase.
    """

    shard_index: int
    num_shards: int
    planned: int
    records: int
    rejected: int
    rejected_by_reason: dict[str, int]
    files: dict[str, int]
    bytes: int
    workers: int
    records_per_second: float
    shard_seconds: float
    seconds: dict[str, float] = field(default_factory=dict)


def write_piece(config: TFRecordBuildConfig) -> PieceReport:
    """Write piece ``config.shard_index`` of ``config.num_shards`` of the plan at ``config.plan`` to ``config.out``.

    Raises:
        DigestError: the plan's labels or text models are not the files the global step recorded.
    """
    timings = Timings()
    layout = BuildPlanLayout(config.plan)
    document, plan = read_plan(config.plan, "--plan")
    every = [(split, index, document["files"][split]) for split in SPLITS for index in range(document["files"][split])]
    mine = [(*every[number], number) for number in range(config.shard_index, len(every), config.num_shards)]
    writer = document["writer"]
    settings = WriterSettings(FeatureSpec.from_dict(document["feature_spec"]), writer["jpeg_quality"], config.plan,
                              writer["seed"], writer["infer_epochs"])
    # Downloaded once per piece; each writer then reads only its file's row groups (they follow the file order).
    with uri.local_copy(layout.records) as records:
        with timings.phase("read"):
            tasks = shard_tasks(records, mine, DatasetLayout(config.out))
        with timings.phase("write"):
            results = write_shards(tasks, settings, config.worker_count, config.progress)
    rejects = [reject for result in results for reject in result.rejects]
    written = sum(r.records for r in results)
    planned = sum(t.planned for t in tasks)
    check_accounting(STAGE, planned, records=written, rejected=len(rejects))
    piece = BuildPieceLayout(config.out)
    uri.write_parquet(tables.rejects_table(rejects, STAGE), piece.rejects)
    uri.write_json(piece.piece, {"plan_id": plan, "shard_index": config.shard_index,
                                 "num_shards": config.num_shards, "files": [_file_entry(r) for r in results]})
    shard_seconds = sum(r.seconds for r in results)
    report = PieceReport(
        shard_index=config.shard_index, num_shards=config.num_shards, planned=planned, records=written,
        rejected=len(rejects), rejected_by_reason=dict(Counter(r.reason.value for r in rejects)),
        files=dict(Counter(r.split for r in results)), bytes=sum(r.bytes for r in results), workers=config.worker_count,
        records_per_second=written / timings.seconds["write"] if timings.seconds["write"] > 0 else 0.0,
        shard_seconds=shard_seconds, seconds=dict(timings.seconds))
    write_report(report, config.out)
    return report


def _file_entry(result: ShardResult) -> dict:
    """What the merge needs of one written file: its name, digest, size, time and label counts."""
    return {"split": result.split, "index": result.index, "name": result.target.rsplit("/", 1)[-1],
            "sha256": result.sha256, "records": result.records, "bytes": result.bytes, "seconds": result.seconds,
            "class_counts": [{str(k): v for k, v in c.items()} for c in result.class_counts],
            "other_reasons": [dict(c) for c in result.other_reasons]}
