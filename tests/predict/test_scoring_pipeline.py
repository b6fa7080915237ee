"""``scoring_pipeline`` end to end under ``kfp.local.SubprocessRunner``: a demo catalog served over
loopback HTTP is ingested, scored in two shards with the tiny model, and merged."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ecom_kfp.demo import DemoCatalogConfig, generate, serve_directory
from ecom_kfp.pipelines.kfp_local import find_run_dir
from ecom_kfp.pipelines.scoring import PIPELINE_NAME, scoring_pipeline

pytestmark = [pytest.mark.e2e,
              pytest.mark.filterwarnings("ignore:.*have no effect in the current local runner"),
              pytest.mark.filterwarnings("ignore:You may be attemping to run a task that uses")]


def _report(directory: Path) -> dict:
    return json.loads((directory / "report.json").read_text())


def test_scoring_pipeline_fans_out_over_shards_and_merges(predict_model, tmp_path, kfp_local):
    demo = generate(DemoCatalogConfig(out=str(tmp_path / "catalog"), products=120, progress=False))
    with serve_directory(demo.images) as images_base:
        scoring_pipeline(catalog=demo.catalog, catalog_format="jsonl", images_base=images_base,
                         model_uri=predict_model.root, num_shards=2, ingest_concurrency=8, allow_private_networks=True)
    run_dir = find_run_dir(kfp_local, PIPELINE_NAME)
    ingest = _report(run_dir / "ingest-op" / "products")
    shards = [_report(p) for p in sorted(run_dir.rglob("predictions")) if p.parent.name == "batch-predict-op"]
    assert sorted(s["shard_index"] for s in shards) == [0, 1]
    assert all(s["input"] + s["other_shards"] == ingest["accepted"] for s in shards)
    merged_dir = run_dir / "merge-predictions-op" / "predictions"
    merged = _report(merged_dir)
    assert merged["input"] == sum(s["input"] for s in shards) == ingest["accepted"]
    assert merged["scored"] + merged["rejected"] == merged["input"]
    predictions = pq.read_table(merged_dir / "predictions.parquet")
    rejects = pq.read_table(merged_dir / "rejects.parquet")
    assert (predictions.num_rows, rejects.num_rows) == (merged["scored"], merged["rejected"])
    assert len(set(predictions.column("product_id").to_pylist())) == predictions.num_rows
    assert merged["with_catalog_category"] > 0 and set(merged["drift"]) == {"level_1", "level_2"}
    page = (merged_dir / "predictions.html").read_text()
    shard_dirs = sorted(p for p in run_dir.rglob("predictions") if p.parent.name == "batch-predict-op")
    assert len(shard_dirs) == 2
    assert all(f"href='{(p / 'predictions.html').resolve().as_uri()}'" in page for p in shard_dirs)
    # The merged page shows the most confident disagreements over both shards, with their pictures.
    chosen = [json.loads((p / "samples.json").read_text()) for p in shard_dirs]
    merged_samples = json.loads((merged_dir / "samples.json").read_text())
    everywhere = sorted((d for c in chosen for d in c["disagreements"]), key=lambda d: -d["confidence"])
    assert [d["confidence"] for d in merged_samples["disagreements"]] == \
        [d["confidence"] for d in everywhere][:4 * merged_samples["limit"]]
    assert merged_samples["disagreements"] and {d["product_id"] for d in merged_samples["disagreements"]} \
        <= {d["product_id"] for d in everywhere}
    first = merged_samples["disagreements"][0]
    assert first["thumbnail"].startswith("data:image/jpeg;base64,") and first["thumbnail"] in page
    assert {name for c in chosen for name in c["samples"]} == set(merged_samples["samples"])
