"""The fanned-out build (plan once, N write pieces, merge) writes exactly the records of the one-process build."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.digests import verify_tree
from ecom_kfp.contracts.layouts import BuildPieceLayout, BuildPlanLayout, DatasetLayout
from ecom_kfp.tfrecord_build import run
from ecom_kfp.tfrecord_build.merge import MergeError
from ecom_kfp.tfrecord_build.writer import shard_tasks
from tests.tfrecord_build.helpers import DedupeOutput, shard_records, small_config


@pytest.fixture(scope="module")
def fanned_out(built, dedupe_output: DedupeOutput, tmp_path_factory: pytest.TempPathFactory):
    """``(plan dir, three piece dirs, plan report, piece reports)``; piece 0 writes with two processes."""
    root = tmp_path_factory.mktemp("fanout")
    products = dedupe_output.layout.root
    plan_dir = str(root / "plan")
    plan_report = run(small_config(products, plan_dir, step="plan"))
    pieces = [str(root / f"piece{i}") for i in range(3)]
    reports = [run(small_config("", piece, step="write", plan=plan_dir, shard_index=i, num_shards=3,
                                workers=2 if i == 0 else 1))
               for i, piece in enumerate(pieces)]
    return plan_dir, pieces, plan_report, reports


def test_plan_three_pieces_and_merge_give_the_one_process_build(built, fanned_out, tmp_path: Path) -> None:
    single_out, single = built
    plan_dir, pieces, plan_report, reports = fanned_out
    assert all(r.records > 0 for r in reports) and sum(r.records for r in reports) == single.records
    merged_dir = str(tmp_path / "merged")
    merged = run(small_config("", merged_dir, step="merge", plan=plan_dir, pieces=pieces))
    ours, theirs = shard_records(merged_dir), shard_records(str(single_out))
    assert list(ours) == list(theirs) and len(ours) > 3  # same files, file by file
    assert all(ours[name] == theirs[name] for name in ours)  # same records, byte for byte, in order
    assert (merged.records, merged.rejected, merged.splits, merged.rejected_by_reason) == \
        (single.records, single.rejected, single.splits, single.rejected_by_reason)
    # Accepted + rejected = input, over the plan's rejects and the pieces'.
    assert merged.records + merged.rejected == merged.input_products == plan_report.input_products
    manifest, single_manifest = (uri.read_json(DatasetLayout(d).manifest) for d in (merged_dir, str(single_out)))
    for key in ("counts", "folding", "feature_spec", "text", "splits"):
        assert manifest[key] == single_manifest[key], key
    assert manifest["shards"]["num_shards"] == 3
    # The merged dataset verifies as one dataset (every shard, label and text file recorded).
    verify_tree(merged_dir, manifest["digests"], DatasetLayout.PARTS, "merged")
    # Shards, labels and text models are the same files; rejects the same rows (Parquet bytes may differ).
    assert {k: v for k, v in manifest["digests"].items() if k != "rejects.parquet"} == \
        {k: v for k, v in single_manifest["digests"].items() if k != "rejects.parquet"}
    rejects = [uri.read_parquet(DatasetLayout(d).rejects).to_pylist() for d in (merged_dir, str(single_out))]
    assert rejects[0] == rejects[1] and len(rejects[0]) == merged.rejected


def test_a_missing_or_duplicated_piece_is_refused(fanned_out, tmp_path: Path) -> None:
    plan_dir, pieces, _, _ = fanned_out
    for given in (pieces[:2], [pieces[0], pieces[1], pieces[1]], [pieces[0], pieces[1], pieces[2], pieces[2]]):
        with pytest.raises(MergeError, match="expected each of 0..2 once"):
            run(small_config("", str(tmp_path / "out"), step="merge", plan=plan_dir, pieces=given))


def test_a_piece_of_another_plan_or_a_changed_shard_is_refused(fanned_out, dedupe_output: DedupeOutput,
                                                              tmp_path: Path) -> None:
    plan_dir, pieces, _, _ = fanned_out
    other_plan = str(tmp_path / "other-plan")
    run(small_config(dedupe_output.layout.root, other_plan, step="plan", split_salt="another"))
    with pytest.raises(MergeError, match="another plan"):
        run(small_config("", str(tmp_path / "out"), step="merge", plan=other_plan, pieces=pieces))
    changed = str(tmp_path / "changed")
    shutil.copytree(pieces[1], changed)
    entry = uri.read_json(BuildPieceLayout(changed).piece)["files"][0]
    shard = Path(DatasetLayout(changed).split_dir(entry["split"])) / entry["name"]
    shard.write_bytes(shard.read_bytes()[:-5])
    with pytest.raises(MergeError, match="SHA-256 differs"):
        run(small_config("", str(tmp_path / "out2"), step="merge", plan=plan_dir, pieces=[pieces[0], changed, pieces[2]]))


def test_text_models_train_on_a_bounded_sample_and_say_so(dedupe_output: DedupeOutput, tmp_path: Path) -> None:
    report = run(small_config(dedupe_output.layout.root, str(tmp_path / "plan"), step="plan", text_sample=50))
    assert report.text["training_titles"] == 50 < report.text["train_products"] and report.text["sampled"]


def test_a_write_piece_refuses_text_models_the_plan_did_not_record(fanned_out, tmp_path: Path) -> None:
    from ecom_kfp.contracts.digests import DigestError

    plan_dir, _, _, _ = fanned_out
    changed = tmp_path / "plan"
    shutil.copytree(plan_dir, changed)
    (changed / "text" / "doc2vec_inference.json").write_text('{"window": 5}')
    with pytest.raises(DigestError, match="doc2vec_inference.json"):
        run(small_config("", str(tmp_path / "piece"), step="write", plan=str(changed), num_shards=2))


def test_shard_tasks_carry_no_records_and_each_reads_its_own_file(fanned_out, tmp_path: Path) -> None:
    """The process handing out tasks holds no rows: a task names its plan file and file number, and the
    writer reads that file's rows (the old tasks carried them, a catalog's worth in the piece's main process)."""
    plan_dir, _, plan_report, _ = fanned_out
    counts = plan_report.files
    files = [(split, index, counts[split]) for split in ("train", "val", "test") for index in range(counts[split])]
    tasks = shard_tasks(BuildPlanLayout(plan_dir).records, [(*f, n) for n, f in enumerate(files)],
                        DatasetLayout(str(tmp_path)))
    assert sum(t.planned for t in tasks) == plan_report.planned_records
    for task in tasks:
        assert len(pickle.dumps(task)) < 1024  # what crosses to a writer process
        records = task.records()
        assert len(records) == task.planned
        assert all(r.product_id for r in records[:task.planned])
