"""Parallel writers and fan-out pieces produce exactly the records of a single build."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.tfrecord_build import run
from ecom_kfp.tfrecord_build.merge import MergeError, merge_pieces
from tests.tfrecord_build.helpers import DedupeOutput, small_config
from tests.tfrecord_build.test_build import read_records


def _by_id(records: dict[str, list[dict]]) -> dict[bytes, tuple]:
    return {r["product_id"]: (split, r["image"], r["title_vector"].tobytes(), r["label_level_3"])
            for split, rows in records.items() for r in rows}


def test_two_pieces_with_two_processes_merge_into_the_single_build(built, dedupe_output: DedupeOutput,
                                                                    tmp_path: Path) -> None:
    pieces = [str(tmp_path / f"piece{i}") for i in range(2)]
    # Piece 0 writes with two spawned processes, piece 1 in-process: both paths must agree.
    reports = [run(small_config(dedupe_output.layout.root, piece, shard_index=i, num_shards=2, workers=2 - i))
               for i, piece in enumerate(pieces)]
    assert all(r.records > 0 and r.in_other_pieces > 0 for r in reports)
    merged = merge_pieces(pieces, str(tmp_path / "merged"))
    single_out, single = built
    assert merged.records == single.records and merged.rejected == single.rejected and merged.splits == single.splits
    assert _by_id(read_records(str(tmp_path / "merged"))) == _by_id(read_records(str(single_out)))
    assert uri.read_json(DatasetLayout(str(tmp_path / "merged")).manifest)["counts"] == \
        uri.read_json(DatasetLayout(str(single_out)).manifest)["counts"]
    with pytest.raises(MergeError, match="shard indices"):
        merge_pieces(pieces[:1], str(tmp_path / "incomplete"))
