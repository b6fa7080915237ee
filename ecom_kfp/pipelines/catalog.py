"""Every component and pipeline this package ships, under the names of their generated files.

``components/<name>/component.yaml`` and ``pipelines/<name>.yaml`` are named from these tables,
so ``compile``, ``validate`` and the tests agree on one list.
"""

from __future__ import annotations

from kfp.dsl.base_component import BaseComponent
from kfp.dsl.graph_component import GraphComponent

COMPONENTS_DIR = "components"
PIPELINES_DIR = "pipelines"
COMPONENT_FILE = "component.yaml"
README_FILE = "README.md"


def components() -> dict[str, BaseComponent]:
    """Component file name -> component, in pipeline order."""
    from ecom_kfp import components as c

    return {
        "ingest": c.ingest_op,
        "shard-plan": c.shard_plan_op,
        "merge-ingest-shards": c.merge_ingest_shards_op,
        "dedupe": c.dedupe_op,
        "tfrecord-build": c.tfrecord_build_op,
        "tfrecord-plan": c.tfrecord_plan_op,
        "tfrecord-write": c.tfrecord_write_op,
        "tfrecord-merge": c.tfrecord_merge_op,
        "seed-plan": c.seed_plan_op,
        "train": c.train_op,
        "ensemble": c.ensemble_op,
        "evaluate": c.evaluate_op,
        "push": c.push_op,
        "batch-predict": c.batch_predict_op,
        "merge-predictions": c.merge_predictions_op,
    }


def pipelines() -> dict[str, GraphComponent]:
    """Pipeline file name (without ``.yaml``) -> pipeline."""
    from ecom_kfp.pipelines.data import data_pipeline
    from ecom_kfp.pipelines.scoring import scoring_pipeline
    from ecom_kfp.pipelines.training import training_pipeline

    return {"training_pipeline": training_pipeline, "data_pipeline": data_pipeline,
            "scoring_pipeline": scoring_pipeline}
