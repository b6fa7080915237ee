"""KFP components of the TFRecord build stage (logic in :mod:`ecom_kfp.tfrecord_build`).

``tfrecord_build_op`` builds a dataset in one pod. For large catalogs the build fans out like
ingest: ``tfrecord_plan_op`` (the global step, once), ``tfrecord_write_op`` (one per piece, under
``dsl.ParallelFor``) and ``tfrecord_merge_op`` (the gather, over ``dsl.Collected`` pieces).

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""

from typing import List

from kfp.dsl import Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.settings import component_doc
from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig

_PRODUCTS = "Dedupe output (DedupeLayout directory)."
_DATASET = ("DatasetLayout directory: train/val/test shards, labels/, text/, manifest.json, rejects.parquet, "
            "report.json.")
_PLAN = "BuildPlanLayout directory: labels/, text/, plan.json, the records of every shard file, rejects.parquet."
_METRICS = "Records per split, rejects, folding, golden test coverage, timings."


@cpu_component
@component_doc(TFRecordBuildConfig, "Split, label, embed titles and write GZIP TFRecord shards from a dedupe output, "
               "in one pod.", products=_PRODUCTS, dataset=_DATASET, metrics=_METRICS)
def tfrecord_build_op(products: Input[Dataset], dataset: Output[Dataset], metrics: Output[Metrics],
                      image_size: int = 224, resize_mode: str = "pad", split_fractions: str = "0.7,0.15,0.15",
                      max_levels: int = 4, min_class_count: int = 5, taxonomy: str = "", taxonomy_mapping: str = "",
                      doc2vec_dim: int = 64, text_sample: int = 200000, shard_target_mb: float = 64.0,
                      workers: int = 0):
    from ecom_kfp.report import scalar_metrics
    from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run

    report = run(TFRecordBuildConfig(
        products=products.path, out=dataset.path, image_size=image_size, resize_mode=resize_mode,
        split_fractions=split_fractions, max_levels=max_levels, min_class_count=min_class_count, taxonomy=taxonomy,
        taxonomy_mapping=taxonomy_mapping, doc2vec_dim=doc2vec_dim, text_sample=text_sample,
        shard_target_mb=shard_target_mb, workers=workers, progress=False))
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)


@cpu_component
@component_doc(TFRecordBuildConfig, "The global step of a fanned-out TFRecord build: splits, label vocabularies, "
               "text models and the shard plan, once.", products=_PRODUCTS, plan=_PLAN,
               metrics="Planned records and shard files per split, rejects, text sample, timings.")
def tfrecord_plan_op(products: Input[Dataset], plan: Output[Dataset], metrics: Output[Metrics],
                     image_size: int = 224, resize_mode: str = "pad", split_fractions: str = "0.7,0.15,0.15",
                     max_levels: int = 4, min_class_count: int = 5, taxonomy: str = "", taxonomy_mapping: str = "",
                     doc2vec_dim: int = 64, text_sample: int = 200000, shard_target_mb: float = 64.0):
    from ecom_kfp.report import scalar_metrics
    from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run

    report = run(TFRecordBuildConfig(
        step="plan", products=products.path, out=plan.path, image_size=image_size, resize_mode=resize_mode,
        split_fractions=split_fractions, max_levels=max_levels, min_class_count=min_class_count, taxonomy=taxonomy,
        taxonomy_mapping=taxonomy_mapping, doc2vec_dim=doc2vec_dim, text_sample=text_sample,
        shard_target_mb=shard_target_mb, progress=False))
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)


@cpu_component
@component_doc(TFRecordBuildConfig, "One piece of the sharded TFRecord write: every num_shards-th shard file of a "
               "plan.", plan="Output of tfrecord_plan_op.",
               piece="BuildPieceLayout directory: this piece's shard files, piece.json, rejects.parquet.",
               metrics="Records written and rejected, bytes, records/s.")
def tfrecord_write_op(plan: Input[Dataset], piece: Output[Dataset], metrics: Output[Metrics],
                      shard_index: int = 0, num_shards: int = 1, workers: int = 0):
    from ecom_kfp.report import scalar_metrics
    from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run

    report = run(TFRecordBuildConfig(step="write", plan=plan.path, out=piece.path, shard_index=shard_index,
                                     num_shards=num_shards, workers=workers, progress=False))
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)


@cpu_component
@component_doc(TFRecordBuildConfig, "Gather a plan and all its written pieces into one TFRecord dataset and manifest.",
               plan="Output of tfrecord_plan_op.", pieces="Outputs of every tfrecord_write_op (dsl.Collected).",
               dataset=_DATASET, metrics=_METRICS)
def tfrecord_merge_op(plan: Input[Dataset], pieces: Input[List[Dataset]], dataset: Output[Dataset],
                      metrics: Output[Metrics]):
    from ecom_kfp.report import scalar_metrics
    from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run

    report = run(TFRecordBuildConfig(step="merge", plan=plan.path, pieces=[p.path for p in pieces],
                                     out=dataset.path, progress=False))
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)
