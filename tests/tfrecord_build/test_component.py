"""``tfrecord_build_op`` in a real ``kfp.local`` run (SubprocessRunner, no containers).

No ``from __future__ import annotations``: KFP reads the pipeline parameter annotations as types.
"""

import json
from pathlib import Path

import pytest

from ecom_kfp.contracts.layouts import DatasetLayout
from tests.tfrecord_build.helpers import DedupeOutput


@pytest.mark.e2e
def test_component_runs_locally(dedupe_output: DedupeOutput, kfp_local: Path) -> None:
    from kfp import dsl

    from ecom_kfp.components.tfrecord_build import tfrecord_build_op

    @dsl.pipeline
    def build_pipeline(products_uri: str):
        products = dsl.importer(artifact_uri=products_uri, artifact_class=dsl.Dataset)
        tfrecord_build_op(products=products.output, image_size=32, split_fractions="0.8,0.1,0.1",
                          min_class_count=3, doc2vec_dim=8)

    build_pipeline(products_uri=dedupe_output.layout.root)
    manifests = list(kfp_local.rglob("manifest.json"))
    assert len(manifests) == 1
    layout = DatasetLayout(str(manifests[0].parent))
    report = json.loads(Path(layout.report).read_text())
    manifest = json.loads(Path(layout.manifest).read_text())
    assert manifest["feature_spec"]["image_size"] == 32 and manifest["feature_spec"]["title_vector_dim"] == 8
    assert report["records"] == sum(manifest["counts"][s]["total"] for s in layout.SPLITS) > 0
    assert report["rejected"] == len(dedupe_output.broken)
    executor_output = json.loads((manifests[0].parent.parent / "executor_output.json").read_text())
    metrics = executor_output["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["records"] == report["records"] and metrics["splits.train"] == report["splits"]["train"]
