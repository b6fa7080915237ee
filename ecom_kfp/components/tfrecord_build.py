"""KFP components of the TFRecord build stage (logic in :mod:`ecom_kfp.tfrecord_build`).

``tfrecord_build_op`` builds the dataset in one pod. For a fan-out, ``tfrecord_plan_op`` runs the
global step once, ``tfrecord_write_op`` writes one piece of the plan's shard files per pod (inside
``dsl.ParallelFor``), and ``tfrecord_merge_op`` gathers the plan and every piece (``dsl.Collected``)
into one dataset. (No ``from __future__ import annotations`` here: KFP reads the parameter
annotations as objects to build the component interface.)
"""


from kfp.dsl import Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.settings import component_doc
from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig

_DATASET = "DatasetLayout directory: train/val/test shards, labels/, text/, manifest.json, rejects.parquet, report.json."
_METRICS = "Records per split, rejects, folding, golden test coverage, timings."


@cpu_component
@component_doc(TFRecordBuildConfig, "Split, label, embed titles and write GZIP TFRecord shards from a dedupe output.",
               products="Dedupe output (DedupeLayout directory).", dataset=_DATASET, metrics=_METRICS)
def tfrecord_build_op(products: Input[Dataset], dataset: Output[Dataset], metrics: Output[Metrics],
                      image_size: int = 224, resize_mode: str = "pad", split_fractions: str = "0.7,0.15,0.15",
                      max_levels: int = 4, min_class_count: int = 1, taxonomy: str = "",
                      taxonomy_mapping: str = "", doc2vec_dim: int = 64, text_sample: int = 200000,
                      title_attributes: str = ""):
    from ecom_kfp.tfrecord_build.stage import run_component

    run_component(metrics, products=products.path, out=dataset.path, image_size=image_size, resize_mode=resize_mode,
                  split_fractions=split_fractions, max_levels=max_levels, min_class_count=min_class_count,
                  taxonomy=taxonomy, taxonomy_mapping=taxonomy_mapping, doc2vec_dim=doc2vec_dim, text_sample=text_sample,
                  title_attributes=title_attributes)


@cpu_component
@component_doc(TFRecordBuildConfig, "Global step of a fanned-out TFRecord build: splits, label vocabularies, "
               "SentencePiece and Doc2Vec (on a bounded sample of training titles) and the shard plan, once.",
               products="Dedupe output (DedupeLayout directory).",
               plan="BuildPlanLayout directory: plan.json, plan.parquet, labels/, text/, rejects.parquet, report.json.",
               metrics="Planned records and files per split, rejects, training titles used, timings.")
def tfrecord_plan_op(products: Input[Dataset], plan: Output[Dataset], metrics: Output[Metrics],
                     image_size: int = 224, resize_mode: str = "pad", split_fractions: str = "0.7,0.15,0.15",
                     max_levels: int = 4, min_class_count: int = 1, taxonomy: str = "",
                     taxonomy_mapping: str = "", doc2vec_dim: int = 64, text_sample: int = 200000,
                     shard_target_mb: float = 64.0, title_attributes: str = ""):
    from ecom_kfp.tfrecord_build.stage import run_component

    run_component(metrics, step="plan", products=products.path, out=plan.path, image_size=image_size,
                  resize_mode=resize_mode, split_fractions=split_fractions, max_levels=max_levels,
                  min_class_count=min_class_count, taxonomy=taxonomy, taxonomy_mapping=taxonomy_mapping,
                  doc2vec_dim=doc2vec_dim, text_sample=text_sample, shard_target_mb=shard_target_mb,
                  title_attributes=title_attributes)


@cpu_component
@component_doc(TFRecordBuildConfig, "Write step of a fanned-out TFRecord build: piece shard_index of num_shards "
               "writes every num_shards-th shard file of the plan.",
               plan="The tfrecord_plan_op output.",
               piece="BuildPieceLayout directory: this piece's shard files, piece.json, rejects.parquet, report.json.")
def tfrecord_write_op(plan: Input[Dataset], piece: Output[Dataset], shard_index: int = 0, num_shards: int = 1,
                      workers: int = 0):
    from ecom_kfp.tfrecord_build.stage import run_component

    run_component(None, step="write", plan=plan.path, out=piece.path, shard_index=shard_index, num_shards=num_shards,
                  workers=workers)


@cpu_component
@component_doc(TFRecordBuildConfig, "Gather a TFRecord build's plan and all its write pieces into one dataset "
               "and manifest.json.",
               plan="The tfrecord_plan_op output.", pieces="Every tfrecord_write_op output (dsl.Collected).",
               dataset=_DATASET, metrics=_METRICS)
def tfrecord_merge_op(plan: Input[Dataset], pieces: Input[list[Dataset]], dataset: Output[Dataset],
                      metrics: Output[Metrics]):
    from ecom_kfp.tfrecord_build.stage import run_component

    run_component(metrics, step="merge", plan=plan.path, pieces=[p.path for p in pieces], out=dataset.path)
