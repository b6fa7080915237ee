"""Both pipelines end to end under ``kfp.local.SubprocessRunner`` on a small demo catalog served
over loopback HTTP, with a local MLflow sqlite store and serving directory."""

import builtins
import json
from pathlib import Path

import pytest

from ecom_kfp.cli import main
from ecom_kfp.contracts.features import MANIFEST_KEY
from ecom_kfp.demo import DemoCatalogConfig, generate, serve_directory
from ecom_kfp.pipelines.data import PIPELINE_NAME as DATA_PIPELINE_NAME
from ecom_kfp.pipelines.data import data_pipeline
from ecom_kfp.pipelines.kfp_local import find_run_dir

pytestmark = [pytest.mark.e2e,
              # kfp.local ignores resources, retries and display names, and runs our image's
              # components in this environment (which is that image's content); both expected.
              pytest.mark.filterwarnings("ignore:.*have no effect in the current local runner"),
              pytest.mark.filterwarnings("ignore:You may be attemping to run a task that uses")]


def _report(directory: Path) -> dict:
    return json.loads((directory / "report.json").read_text())


def test_run_local_training_pipeline_counts_add_up_from_ingest_to_push(tmp_path: Path,
                                                                      capsys) -> None:
    """Two seeds, so the default ``make demo`` (one seed, published unchanged) and this run cover
    both of the ensemble stage's paths."""
    out = tmp_path / "run"
    # One epoch on 300 products: the push path is what is checked here, not the model, so no floor.
    real_print = builtins.print
    assert main(["run-local", "--out", str(out), "--products", "300", "--epochs", "1", "--train-seeds", "0,1",
                 "--image-size", "32", "--backbone", "small-cnn", "--min-weighted-score", "0"]) == 0
    assert builtins.print is real_print  # kfp.local's ParallelFor threads can leave an indenting one
    printed = capsys.readouterr().out
    summary = _report(out)
    members = [Path(p) for p in summary["outputs"].pop("train")]
    outputs = {stage: Path(p) for stage, p in summary["outputs"].items()}
    assert set(outputs) == {"ingest", "dedupe", "dataset", "ensemble", "evaluate", "push"}
    for stage, files in {"ingest": ["products.parquet", "rejects.parquet", "report.json"],
                         "dedupe": ["products.parquet", "duplicates.parquet", "report.json"],
                         "dataset": ["manifest.json", "labels/level_1.txt", "text/spm.model"],
                         "ensemble": ["saved_model", "digests.json", "report.json"],
                         "evaluate": ["metrics.json", "blessing.json", "report.html"],
                         "push": ["report.json"]}.items():
        for name in files:
            assert (outputs[stage] / name).exists(), f"{stage}: {name}"
    assert len(members) == 2
    for member in members:
        assert (member / "model.keras").exists() and (member / "saved_model").exists()
    for split in ("train", "val", "test"):
        assert list((outputs["dataset"] / split).glob("part-*.tfrecord.gz")), split

    assert summary["counts_add_up"], summary["count_checks"]
    # The demo's colour column reaches the model, and through its manifest, the scoring pipeline's predict.
    manifest = json.loads((outputs["dataset"] / "manifest.json").read_text())
    assert manifest[MANIFEST_KEY]["title_attributes"] == ["colour"]
    reports = summary["reports"]
    assert reports["ingest"]["input_records"] == 300
    assert reports["ingest"]["rejected"] > 0  # the demo plants broken images and dead links
    assert reports["dedupe"]["duplicates"] > 0  # and duplicates
    assert reports["blessing"]["blessed"] is True  # no baseline, floor 0.0
    # The two seeds trained different models, and the one evaluated and pushed is their average.
    ensemble = reports["ensemble"]
    assert sorted(ensemble["members"]) == sorted(str(m) for m in members) and ensemble["weights"] == [0.5, 0.5]
    assert len(set(ensemble["member_sha256"])) == 2
    assert reports["blessing"]["model_sha256"] == ensemble["content_sha256"]
    push = reports["push"]
    assert push["registered_model_name"] == "ecom-product-category"
    assert Path(push["serving_uri"]).is_relative_to(out / "serving")
    assert any(Path(push["serving_uri"]).rglob("saved_model.pb"))
    assert (out / "mlflow.db").exists()
    assert "counts add up     yes" in printed and "blessed           yes" in printed
    assert "ensemble          2 models averaged, weights 0.50, 0.50" in printed
    planted = reports["scoring"]["planted_label_errors"]
    assert planted["flagged"] <= planted["scored"] <= planted["planted"] >= 1
    assert f"planted wrong labels: {planted['flagged']} of {planted['scored']} scored flagged suspect" in printed
    _assert_quiet_and_guiding(printed, out)


def _assert_quiet_and_guiding(printed: str, out: Path) -> None:
    """A page of output that ends by naming the pages to open; the chatter is in the log file."""
    lines = printed.splitlines()
    assert len(lines) < 60, printed
    assert "Executing task" not in printed and "Executing task" in (out / "ecom-kfp.log").read_text()
    where = lines[lines.index("where to look:") + 1:]
    listed = {line.split()[0]: line.split()[-1] for line in where if not line.strip().startswith("MLflow")}
    for name in ("report", "evaluation", "duplicates", "log"):
        assert Path(listed[name]).is_file(), (name, listed)
    assert any("mlflow ui --backend-store-uri" in line for line in where)


@pytest.mark.parametrize("build_pieces", [1, 3])
def test_data_pipeline_with_two_shards_builds_the_one_pod_dataset(tmp_path: Path, kfp_local: Path, build_pieces: int) -> None:
    """Ingest over 2 shards, the TFRecord write over ``build_pieces`` pods: the gathered shards are,
    file by file and record by record, those of the one-pod build of the same dedupe output."""
    from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run
    from tests.tfrecord_build.helpers import shard_records

    demo = generate(DemoCatalogConfig(out=str(tmp_path / "catalog"), products=200, progress=False))
    # Small shard files, so that 3 pieces each write several of them.
    build_settings = dict(image_size=32, min_class_count=3, shard_target_mb=0.02)
    with serve_directory(demo.images) as images_base:
        data_pipeline(catalog=demo.catalog, catalog_format="jsonl", images_base=images_base,
                      business_value_uri=demo.business_value, num_shards=2, num_build_shards=build_pieces,
                      ingest_concurrency=8, allow_private_networks=True, **build_settings)
    run_dir = find_run_dir(kfp_local, DATA_PIPELINE_NAME)
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
    assert sorted(p["shard_index"] for p in pieces) == list(range(build_pieces))
    dataset = run_dir / "tfrecord-merge-op" / "dataset"
    build = _report(dataset)
    assert build["input_products"] == dedupe["kept"] and build["num_shards"] == build_pieces
    assert build["records"] + build["rejected"] == build["input_products"]
    assert build["records"] == sum(p["records"] for p in pieces)

    one_pod = tmp_path / "one-pod"
    single = run(TFRecordBuildConfig(products=str(run_dir / "dedupe-op" / "deduped"), out=str(one_pod),
                                     progress=False, **build_settings))
    ours, theirs = shard_records(str(dataset)), shard_records(str(one_pod))
    assert list(ours) == list(theirs) and len(ours) >= 6
    assert all(ours[name] == theirs[name] for name in ours)
    assert (build["records"], build["rejected"], build["splits"]) == (single.records, single.rejected, single.splits)
