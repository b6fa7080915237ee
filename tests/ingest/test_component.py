"""``ingest_op`` and ``merge_ingest_shards_op`` in a real ``kfp.local`` pipeline run.

(No ``from __future__ import annotations``: KFP reads the pipeline's annotations as objects.)
"""

import json
from pathlib import Path

from ecom_kfp.testing.image_server import Fault, ServerHandle


def test_sharded_ingest_pipeline_runs_under_kfp_local(server: ServerHandle, tmp_path: Path, kfp_local: Path) -> None:
    from kfp import dsl

    from ecom_kfp.components.ingest import ingest_op, merge_ingest_shards_op

    rows = [{"product_id": str(i), "title": f"Cotton shirt model {i}", "category_path": "Apparel > Shirts",
             "image_url": f"{n}.jpg"} for i, n in enumerate("abcde")]
    rows.append({"product_id": "dead", "title": "Cotton shirt model x", "category_path": "Apparel",
                 "image_url": server.url("a.jpg", Fault.NOT_FOUND)})
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))

    @dsl.pipeline(name="ingest-shards")
    def pipeline(catalog: str, images_base: str) -> dsl.Dataset:
        with dsl.ParallelFor([0, 1]) as shard:
            task = ingest_op(catalog=catalog, images_base=images_base, shard_index=shard, num_shards=2,
                             concurrency=4, timeout_seconds=5.0, allow_private_networks=True)
        return merge_ingest_shards_op(shards=dsl.Collected(task.outputs["products"])).outputs["products"]

    run = pipeline(catalog=str(catalog), images_base=f"{server.base_url}/img/")
    merged = Path(run.output.path)
    report = json.loads((merged / "report.json").read_text())
    assert (report["input_records"], report["accepted"], report["rejected"]) == (6, 5, 1)
    assert report["rejects_by_reason"] == {"not_found": 1}
    assert len(report["shards"]) == 2
    assert len(list((merged / "images").rglob("*.jpg"))) == 5
    assert (merged / "products.parquet").is_file() and (merged / "rejects.parquet").is_file()
