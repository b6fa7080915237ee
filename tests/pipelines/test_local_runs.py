"""Both pipelines end to end under ``kfp.local.SubprocessRunner`` on a small demo catalog served
over loopback HTTP, with a local MLflow sqlite store and serving directory."""

import json
from pathlib import Path

import pytest
from kfp import local

from ecom_kfp.cli import main
from ecom_kfp.demo import DemoCatalogConfig, generate, serve_directory
from ecom_kfp.pipelines.data import PIPELINE_NAME as DATA_PIPELINE_NAME
from ecom_kfp.pipelines.data import data_pipeline
from ecom_kfp.pipelines.local_run import find_run_dir

pytestmark = [pytest.mark.e2e,
              # kfp.local ignores resources, retries and display names, and runs our image's
              # components in this environment (which is that image's content); both expected.
              pytest.mark.filterwarnings("ignore:.*have no effect in the current local runner"),
              pytest.mark.filterwarnings("ignore:You may be attemping to run a task that uses")]


def _report(directory: Path) -> dict:
    return json.loads((directory / "report.json").read_text())


def test_run_local_training_pipeline_counts_add_up_from_ingest_to_push(tmp_path: Path,
                                                                      capsys) -> None:
    out = tmp_path / "run"
    assert main(["run-local", "--out", str(out), "--products", "300", "--epochs", "1",
                 "--image-size", "32", "--backbone", "small-cnn"]) == 0
    printed = capsys.readouterr().out
    summary = _report(out)
    outputs = {stage: Path(p) for stage, p in summary["outputs"].items()}
    assert set(outputs) == {"ingest", "dedupe", "dataset", "train", "evaluate", "push"}
    for stage, files in {"ingest": ["products.parquet", "rejects.parquet", "report.json"],
                         "dedupe": ["products.parquet", "duplicates.parquet", "report.json"],
                         "dataset": ["manifest.json", "labels/level_1.txt", "text/spm.model"],
                         "train": ["saved_model", "model.keras", "report.json"],
                         "evaluate": ["metrics.json", "blessing.json", "report.html"],
                         "push": ["report.json"]}.items():
        for name in files:
            assert (outputs[stage] / name).exists(), f"{stage}: {name}"
    for split in ("train", "val", "test"):
        assert list((outputs["dataset"] / split).glob("part-*.tfrecord.gz")), split

    assert summary["counts_add_up"], summary["count_checks"]
    reports = summary["reports"]
    assert reports["ingest"]["input_records"] == 300
    assert reports["ingest"]["rejected"] > 0  # the demo plants broken images and dead links
    assert reports["dedupe"]["duplicates"] > 0  # and duplicates
    assert reports["blessing"]["blessed"] is True  # no baseline, floor 0.0
    push = reports["push"]
    assert push["registered_model_name"] == "ecom-product-category"
    assert Path(push["serving_uri"]).is_relative_to(out / "serving")
    assert any(Path(push["serving_uri"]).rglob("saved_model.pb"))
    assert (out / "mlflow.db").exists()
    assert "counts add up     yes" in printed and "blessed           yes" in printed


def test_data_pipeline_with_two_shards(tmp_path: Path) -> None:
    """Ingest fans out over two shards and the build over three pieces; the pieces write exactly
    the shard files (decompressed record bytes, file by file) of a one-piece build of the same catalog."""
    from tests.tfrecord_build.conftest import shard_records

    demo = generate(DemoCatalogConfig(out=str(tmp_path / "catalog"), products=200, progress=False))
    datasets = {}
    with serve_directory(demo.images) as images_base:
        for pieces in (1, 3):
            root = tmp_path / f"pipeline_root_{pieces}"
            local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
            data_pipeline(catalog=demo.catalog, catalog_format="jsonl", images_base=images_base,
                          business_value_uri=demo.business_value, num_shards=2, build_shards=pieces,
                          image_size=32, min_class_count=3, ingest_concurrency=8, shard_target_mb=0.02)
            datasets[pieces] = find_run_dir(root, DATA_PIPELINE_NAME)
    run_dir = datasets[3]
    shards = [_report(p) for p in sorted(run_dir.rglob("products")) if p.parent.name == "ingest-op"]
    assert sorted(s["shard_index"] for s in shards) == [0, 1]
    assert all(s["num_shards"] == 2 for s in shards)
    assert sum(s["input_records"] for s in shards) == 200

    merged = _report(run_dir / "merge-ingest-shards-op" / "products")
    assert merged["accepted"] == sum(s["accepted"] for s in shards)
    assert merged["rejected"] == sum(s["rejected"] for s in shards)
    dedupe = _report(run_dir / "dedupe-op" / "deduped")
    assert dedupe["input"] == merged["accepted"]
    pieces = [_report(p) for p in sorted(run_dir.rglob("piece")) if p.parent.name == "tfrecord-write-op"]
    assert sorted(p["shard_index"] for p in pieces) == [0, 1, 2] and all(p["records"] > 0 for p in pieces)
    dataset = run_dir / "tfrecord-merge-op" / "dataset"
    build = _report(dataset)
    assert build["input_products"] == dedupe["kept"]
    assert build["records"] + build["rejected"] == build["input_products"]
    assert build["num_shards"] == 3 and build["shards"]["train"] > 3
    assert (dataset / "manifest.json").exists()
    one_piece = shard_records(str(datasets[1] / "tfrecord-merge-op" / "dataset"))
    assert sum(map(len, one_piece.values())) == build["records"]
    assert shard_records(str(dataset)) == one_piece
