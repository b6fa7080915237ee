"""``data_pipeline``: ingest and the TFRecord build fanned out over pods, for catalogs too large for one.

``shard-plan -> ParallelFor(ingest shard) -> Collected -> merge -> dedupe -> tfrecord-plan ->
ParallelFor(tfrecord write piece) -> Collected -> tfrecord-merge``. Dedupe needs one global view
(duplicates cross shards), so the ingest shards are merged first; it works on compact hash tables
and handles tens of millions of products in one pod. The build's global step (splits, labels,
text models, shard plan) runs once; its write pieces write exactly the shard files one pod would.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input

from ecom_kfp.components import (
    merge_ingest_shards_op,
    shard_plan_op,
    tfrecord_merge_op,
    tfrecord_plan_op,
    tfrecord_write_op,
)
from ecom_kfp.pipelines import steps
from ecom_kfp.pipelines.task_settings import set_resources

PIPELINE_NAME = "ecom-kfp-data"
#: Shards ingesting at once. ``dsl.ParallelFor(parallelism=...)`` takes a constant only; this
#: bounds the load on image hosts however many shards a run asks for.
MAX_PARALLEL_SHARDS = 16
#: Build pieces writing at once: they read the ingest store and write the dataset store, not image hosts.
MAX_PARALLEL_PIECES = 32


@dsl.pipeline(name="ingest-shard",
              description="Ingest one shard of a catalog with its resources set from parameters.")
def ingest_shard(catalog: str, catalog_format: str, column_map: str, images_base: str,
                 business_value_uri: str, shard_index: int, num_shards: int, concurrency: int,
                 allow_local_files: bool, allow_private_networks: bool, allow_gcs_buckets: str,
                 cpu_request: str, memory: str) -> Dataset:
    """One ingest shard. A pipeline of its own because kfp 2.17 drops parameter-valued resources
    of tasks placed directly inside ``dsl.ParallelFor`` (see ``task_settings``)."""
    task = steps.ingest(catalog=catalog, catalog_format=catalog_format, column_map=column_map,
                        images_base=images_base, business_value_uri=business_value_uri,
                        concurrency=concurrency, cpu=cpu_request, memory=memory,
                        allow_local_files=allow_local_files, allow_private_networks=allow_private_networks,
                        allow_gcs_buckets=allow_gcs_buckets, shard_index=shard_index, num_shards=num_shards)
    return task.outputs["products"]


@dsl.pipeline(name="tfrecord-write-piece",
              description="Write one piece of a planned TFRecord build with its resources set from parameters.")
def tfrecord_write_piece(plan: Input[Dataset], shard_index: int, num_shards: int, cpu_request: str,
                         memory: str) -> Dataset:
    """One write piece, a pipeline of its own for the same reason as :func:`ingest_shard`."""
    task = tfrecord_write_op(plan=plan, shard_index=shard_index, num_shards=num_shards)
    set_resources(task.set_display_name("tfrecord-write"), cpu_request, memory)
    return task.outputs["piece"]


@dsl.pipeline(name=PIPELINE_NAME,
              description="Catalog -> ingest fanned out over shards -> merged -> deduplicated -> "
                          "TFRecord dataset written by pieces in parallel, for catalogs too large for one pod.")
def data_pipeline(
    catalog: str,
    catalog_format: str = "auto",
    column_map: str = "",
    images_base: str = "",
    business_value_uri: str = "",
    taxonomy_uri: str = "",
    num_shards: int = 4,
    num_build_shards: int = 4,
    ingest_concurrency: int = 64,
    allow_local_files: bool = False,
    allow_private_networks: bool = False,
    allow_gcs_buckets: str = "",
    near_duplicate_threshold: int = 6,
    image_size: int = 224,
    split_fractions: str = "0.7,0.15,0.15",
    max_levels: int = 4,
    min_class_count: int = 1,
    title_attributes: str = "",
    text_sample: int = 200000,
    shard_target_mb: float = 64.0,
    cpu_request: str = "2",
    memory: str = "8Gi",
) -> Dataset:
    """Build the training dataset of a large catalog with sharded ingest and a sharded TFRecord write.

    Args:
        catalog: Catalog URI (local path, gs:// or http(s) URL of a JSONL/CSV/Parquet/Amazon file).
        catalog_format: auto, jsonl, amazon, csv or parquet.
        column_map: FIELD=COL,... mapping products-table fields to catalog columns.
        images_base: URL or URI that relative image references are resolved against.
        business_value_uri: Optional CSV of business value per category.
        taxonomy_uri: Optional taxonomy file (Google Product Taxonomy format).
        num_shards: Ingest shards; each runs in its own pod.
        num_build_shards: TFRecord write pieces; each runs in its own pod.
        ingest_concurrency: Parallel image downloads per ingest pod.
        allow_local_files: Let image references name local files (only for catalogs you wrote).
        allow_private_networks: Let image references reach loopback, private and link-local addresses.
        allow_gcs_buckets: Comma-separated gs:// buckets image references may read from.
        near_duplicate_threshold: Max perceptual-hash Hamming distance of near-duplicate images.
        image_size: Side of the square model input in pixels.
        split_fractions: train,val,test fractions (split by duplicate group).
        max_levels: Taxonomy depth: number of category levels.
        min_class_count: Classes with fewer training products are folded into 'other' (1 = keep every class seen).
        title_attributes: Comma-separated catalog columns the model reads after the title, a word each
            (e.g. gender,usage,season,baseColour); empty = the title alone.
        text_sample: Most training titles SentencePiece and Doc2Vec train on (0 = all).
        shard_target_mb: Aimed-for size of one TFRecord shard file in MiB.
        cpu_request: CPU request of every task.
        memory: Memory request and limit of every task.
    """
    plan = shard_plan_op(num_shards=num_shards).set_display_name("shard-plan")
    with dsl.ParallelFor(plan.output, parallelism=MAX_PARALLEL_SHARDS,
                         name="ingest-shards") as shard_index:
        shard = ingest_shard(catalog=catalog, catalog_format=catalog_format,
                             column_map=column_map, images_base=images_base,
                             business_value_uri=business_value_uri, shard_index=shard_index,
                             num_shards=num_shards, concurrency=ingest_concurrency,
                             allow_local_files=allow_local_files, allow_private_networks=allow_private_networks,
                             allow_gcs_buckets=allow_gcs_buckets, cpu_request=cpu_request, memory=memory)
    merge = merge_ingest_shards_op(shards=dsl.Collected(shard.output))
    set_resources(merge.set_display_name("merge-ingest-shards"), cpu_request, memory)
    dedupe = steps.dedupe_step(merge.outputs["products"], near_threshold=near_duplicate_threshold,
                               cpu=cpu_request, memory=memory)
    build_plan = tfrecord_plan_op(products=dedupe.outputs["deduped"], image_size=image_size,
                                  split_fractions=split_fractions, max_levels=max_levels,
                                  min_class_count=min_class_count, taxonomy=taxonomy_uri, text_sample=text_sample,
                                  shard_target_mb=shard_target_mb, title_attributes=title_attributes)
    set_resources(build_plan.set_display_name("tfrecord-plan"), cpu_request, memory)
    pieces = shard_plan_op(num_shards=num_build_shards).set_display_name("build-piece-plan")
    with dsl.ParallelFor(pieces.output, parallelism=MAX_PARALLEL_PIECES,
                         name="tfrecord-write-pieces") as piece_index:
        piece = tfrecord_write_piece(plan=build_plan.outputs["plan"], shard_index=piece_index,
                                     num_shards=num_build_shards, cpu_request=cpu_request, memory=memory)
    build = tfrecord_merge_op(plan=build_plan.outputs["plan"], pieces=dsl.Collected(piece.output))
    set_resources(build.set_display_name("tfrecord-merge"), cpu_request, memory)
    return build.outputs["dataset"]
