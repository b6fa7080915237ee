"""``dedupe_op`` in a real ``kfp.local`` run (SubprocessRunner, no containers).

No ``from __future__ import annotations``: KFP reads the pipeline parameter annotations as types.
"""


import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.dedupe.helpers import jpeg, picture


def test_component_runs_locally(make_layout, kfp_local):
    from kfp import dsl

    from ecom_kfp.components.dedupe import dedupe_op

    same = jpeg(picture(1))
    src = make_layout([{"product_id": "a", "title": "x", "image": same}, {"product_id": "b", "title": "y", "image": same},
                       {"product_id": "c", "title": "z", "image": jpeg(picture(2))}])

    @dsl.pipeline
    def dedupe_pipeline(products_uri: str):
        products = dsl.importer(artifact_uri=products_uri, artifact_class=dsl.Dataset)
        dedupe_op(products=products.output, near_threshold=4, title_rule=False, workers=1)

    dedupe_pipeline(products_uri=str(src))
    outputs = list(kfp_local.rglob("duplicates.parquet"))
    assert len(outputs) == 1
    rows = pq.read_table(outputs[0]).to_pylist()
    assert [(r["product_id"], r["rule"], r["kept_product_id"]) for r in rows] == [("b", "sha256", "a")]
    html = list(kfp_local.rglob("samples*"))
    assert any(p.is_file() and "data:image/jpeg;base64," in p.read_text() for p in html)
    assert json.loads(Path(outputs[0].parent / "report.json").read_text())["kept"] == 2
