"""KFP components of the ingest stage: ``ingest_op`` (one shard) and ``merge_ingest_shards_op``.

Both write an :class:`~ecom_kfp.contracts.layouts.IngestLayout` into their ``products`` artifact
directory and log the report's numbers as metrics. (No ``from __future__ import annotations``
here: KFP reads the parameter annotations as objects to build the component interface.)
"""

from typing import List

from kfp.dsl import Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component


@cpu_component
def ingest_op(catalog: str, products: Output[Dataset], metrics: Output[Metrics], format: str = "auto",
              column_map: str = "", images_base: str = "", business_value_uri: str = "",
              shard_index: int = 0, num_shards: int = 1, concurrency: int = 64,
              timeout_seconds: float = 20.0, max_retries: int = 2, fetch_processes: int = 1):
    """Read one shard of a catalog, fetch and check its images, write the products table.

    Args:
        catalog: Catalog URI (local path or gs://): JSON lines, Amazon metadata, CSV or Parquet.
        products: Output ingest layout: products.parquet, rejects.parquet, images/, report.json.
        metrics: Counts, rejects per reason, images/s.
        format: auto, jsonl, amazon, csv or parquet.
        column_map: FIELD=COLUMN,... (a>b>c for a category path from several columns).
        images_base: Base URL/URI for relative image references.
        business_value_uri: Per-category business value table (CSV or JSON).
        shard_index: This shard, 0-based.
        num_shards: Number of shards.
        concurrency: Images in flight at once.
        timeout_seconds: Seconds per download attempt.
        max_retries: Retries of transient download failures.
        fetch_processes: Worker processes fetching images (1 = none, one event loop; 0 = one per CPU).
    """
    from ecom_kfp.ingest import IngestConfig, run
    from ecom_kfp.ingest.fetch import FetchConfig
    from ecom_kfp.report import scalar_metrics

    report = run(IngestConfig(
        catalog=catalog, out=products.path, format=format, column_map=column_map,
        images_base=images_base, business_value_uri=business_value_uri, shard_index=shard_index,
        num_shards=num_shards, progress=False,
        fetch=FetchConfig(concurrency=concurrency, timeout_seconds=timeout_seconds, max_retries=max_retries,
                          processes=fetch_processes)))
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)


@cpu_component
def merge_ingest_shards_op(shards: Input[List[Dataset]], products: Output[Dataset], metrics: Output[Metrics]):
    """Merge the ingest outputs of all shards into one ingest layout.

    Args:
        shards: The ingest_op outputs of every shard (dsl.Collected).
        products: Output merged ingest layout.
        metrics: Summed counts, rejects per reason, images/s of the fan-out.
    """
    from ecom_kfp.ingest.merge import merge_shards
    from ecom_kfp.report import scalar_metrics

    report = merge_shards([shard.path for shard in shards], products.path, progress=False)
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)
