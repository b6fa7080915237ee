"""KFP component of the TFRecord build stage (logic in :mod:`ecom_kfp.tfrecord_build`)."""

from kfp.dsl import Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.settings import component_doc
from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig


@cpu_component
@component_doc(TFRecordBuildConfig, "Split, label, embed titles and write GZIP TFRecord shards from a dedupe output.",
               products="Dedupe output (DedupeLayout directory).",
               dataset="DatasetLayout directory: train/val/test shards, labels/, text/, manifest.json, "
                       "rejects.parquet, report.json.",
               metrics="Records per split, rejects, folding, golden test coverage, timings.")
def tfrecord_build_op(products: Input[Dataset], dataset: Output[Dataset], metrics: Output[Metrics],
                      image_size: int = 224, resize_mode: str = "pad", split_fractions: str = "0.7,0.15,0.15",
                      max_levels: int = 4, min_class_count: int = 1, taxonomy: str = "",
                      taxonomy_mapping: str = "", doc2vec_dim: int = 64, shard_index: int = 0, num_shards: int = 1):
    from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run
    from ecom_kfp.tfrecord_build.config import parse_fractions
    from ecom_kfp.report import scalar_metrics

    report = run(TFRecordBuildConfig(
        products=products.path, out=dataset.path, image_size=image_size, resize_mode=resize_mode,
        split_fractions=parse_fractions(split_fractions), max_levels=max_levels, min_class_count=min_class_count,
        taxonomy=taxonomy, taxonomy_mapping=taxonomy_mapping, doc2vec_dim=doc2vec_dim,
        shard_index=shard_index, num_shards=num_shards, progress=False))
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)
