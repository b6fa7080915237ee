"""The KFP components of every stage, importable from one place.

``from ecom_kfp.components import ingest_op`` gives the component a pipeline author wires into a
``@dsl.pipeline``; the same components are compiled to ``components/<name>/component.yaml`` by
``ecom-kfp compile`` for teams that load them from a file or URL instead.
"""

from ecom_kfp.components.dedupe import dedupe_op
from ecom_kfp.components.ensemble import ensemble_op, seed_plan_op
from ecom_kfp.components.evaluate import evaluate_op
from ecom_kfp.components.ingest import ingest_op, merge_ingest_shards_op
from ecom_kfp.components.predict import batch_predict_op, merge_predictions_op
from ecom_kfp.components.push import push_op
from ecom_kfp.components.shards import shard_plan_op
from ecom_kfp.components.tfrecord_build import (
    tfrecord_build_op,
    tfrecord_merge_op,
    tfrecord_plan_op,
    tfrecord_write_op,
)
from ecom_kfp.components.train import train_op

__all__ = [
    "batch_predict_op",
    "evaluate_op",
    "dedupe_op",
    "ensemble_op",
    "ingest_op",
    "merge_ingest_shards_op",
    "merge_predictions_op",
    "push_op",
    "seed_plan_op",
    "shard_plan_op",
    "tfrecord_build_op",
    "tfrecord_merge_op",
    "tfrecord_plan_op",
    "tfrecord_write_op",
    "train_op",
]
