"""Task builders both pipelines share, so ingest and dedupe -> TFRecords are wired once.

Each function must be called inside a ``@dsl.pipeline`` body; it adds tasks to that pipeline and
returns the last one.
"""

from __future__ import annotations

from kfp import dsl
from kfp.dsl import PipelineTask

from ecom_kfp.components import dedupe_op, ingest_op, tfrecord_build_op
from ecom_kfp.pipelines.task_settings import Value, set_resources, with_network_retries


def ingest(*, catalog: Value, catalog_format: Value, column_map: Value, images_base: Value,
           business_value_uri: Value, concurrency: Value, cpu: Value, memory: Value,
           allow_local_files: Value, allow_private_networks: Value, allow_gcs_buckets: Value,
           shard_index: Value = 0, num_shards: Value = 1) -> PipelineTask:
    """Ingest (one shard of) the catalog; retried because it fetches images over the network."""
    task = ingest_op(catalog=catalog, format=catalog_format, column_map=column_map,
                     images_base=images_base, business_value_uri=business_value_uri,
                     shard_index=shard_index, num_shards=num_shards, concurrency=concurrency,
                     allow_local_files=allow_local_files, allow_private_networks=allow_private_networks,
                     allow_gcs_buckets=allow_gcs_buckets)
    task.set_display_name("ingest")
    return with_network_retries(set_resources(task, cpu, memory))


def dedupe_step(products: dsl.PipelineChannel, *, near_threshold: Value, cpu: Value, memory: Value) -> PipelineTask:
    """Hash-dedupe ``products`` (an ingest output)."""
    dedupe = dedupe_op(products=products, near_threshold=near_threshold)
    return set_resources(dedupe.set_display_name("dedupe"), cpu, memory)


def dedupe_and_build(products: dsl.PipelineChannel, *, near_threshold: Value, taxonomy_uri: Value,
                     image_size: Value, split_fractions: Value, max_levels: Value,
                     min_class_count: Value, title_attributes: Value, cpu: Value, memory: Value) -> PipelineTask:
    """Hash-dedupe ``products`` (an ingest output), then build the TFRecord dataset in one pod."""
    dedupe = dedupe_step(products, near_threshold=near_threshold, cpu=cpu, memory=memory)
    build = tfrecord_build_op(products=dedupe.outputs["deduped"], image_size=image_size,
                              split_fractions=split_fractions, max_levels=max_levels,
                              min_class_count=min_class_count, taxonomy=taxonomy_uri,
                              title_attributes=title_attributes)
    return set_resources(build.set_display_name("tfrecord-build"), cpu, memory)
