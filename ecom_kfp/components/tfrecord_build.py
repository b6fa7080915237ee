"""KFP component of the TFRecord build stage (logic in :mod:`ecom_kfp.tfrecord_build`)."""

from kfp.dsl import Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component


@cpu_component
def tfrecord_build_op(products: Input[Dataset], dataset: Output[Dataset], metrics: Output[Metrics],
                      image_size: int = 224, resize_mode: str = "pad", split_fractions: str = "0.7,0.15,0.15",
                      max_levels: int = 4, min_class_count: int = 1, taxonomy_uri: str = "",
                      doc2vec_dim: int = 64, shard_index: int = 0, num_shards: int = 1,
                      taxonomy_mapping_uri: str = ""):
    """Split, label, embed titles and write GZIP TFRecord shards from a dedupe output.

    Args:
        products: Dedupe output (DedupeLayout directory).
        dataset: DatasetLayout directory: train/val/test shards, labels/, text/, manifest.json,
            rejects.parquet, report.json.
        metrics: Records per split, rejects, folding, golden test coverage, timings.
        image_size: Side of the stored square images.
        resize_mode: pad (white borders) or crop (centre crop).
        split_fractions: Train,val,test shares summing to 1.
        max_levels: Deepest taxonomy level labelled.
        min_class_count: Classes with fewer training products fold into 'other' (1 = keep every class seen).
        taxonomy_uri: Google Product Taxonomy file (taxonomy-with-ids format); '' = source categories.
        doc2vec_dim: Size of the Doc2Vec title vector.
        shard_index: This piece of a fan-out.
        num_shards: Pieces in the fan-out.
        taxonomy_mapping_uri: TSV mapping source category paths to taxonomy ids or paths (with taxonomy_uri).
    """
    from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run
    from ecom_kfp.tfrecord_build.config import parse_fractions
    from ecom_kfp.report import scalar_metrics

    report = run(TFRecordBuildConfig(
        products=products.path, out=dataset.path, image_size=image_size, resize_mode=resize_mode,
        split_fractions=parse_fractions(split_fractions), max_levels=max_levels, min_class_count=min_class_count,
        taxonomy=taxonomy_uri, taxonomy_mapping=taxonomy_mapping_uri, doc2vec_dim=doc2vec_dim,
        shard_index=shard_index, num_shards=num_shards, progress=False))
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)
