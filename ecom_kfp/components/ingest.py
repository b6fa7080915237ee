"""KFP components of the ingest stage: ``ingest_op`` (one shard) and ``merge_ingest_shards_op``.

Both write an :class:`~ecom_kfp.contracts.layouts.IngestLayout` into their ``products`` artifact
directory and log the report's numbers as metrics. (No ``from __future__ import annotations``
here: KFP reads the parameter annotations as objects to build the component interface.)
"""


from kfp.dsl import Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.ingest.config import IngestConfig
from ecom_kfp.settings import component_doc


@cpu_component
@component_doc(IngestConfig, "Read one shard of a catalog, fetch and check its images, write the products table.",
               products="Output ingest layout: products.parquet, rejects.parquet, images/, report.json.",
               metrics="Counts, rejects per reason, images/s.")
def ingest_op(products: Output[Dataset], metrics: Output[Metrics], catalog: str = "", format: str = "auto",
              column_map: str = "", images_base: str = "", business_value_uri: str = "",
              shard_index: int = 0, num_shards: int = 1, concurrency: int = 64,
              timeout_seconds: float = 20.0, max_retries: int = 2, fetch_processes: int = 1,
              allow_local_files: bool = False, allow_private_networks: bool = False, allow_gcs_buckets: str = ""):
    from ecom_kfp.ingest import IngestConfig, run
    from ecom_kfp.ingest.config import FetchConfig
    from ecom_kfp.ingest.source_policy import SourcePolicy
    from ecom_kfp.report import scalar_metrics

    policy = SourcePolicy(allow_local_files=allow_local_files, allow_private_networks=allow_private_networks,
                          allow_gcs_buckets=allow_gcs_buckets)
    report = run(IngestConfig(
        catalog=catalog, out=products.path, format=format, column_map=column_map,
        images_base=images_base, business_value_uri=business_value_uri, shard_index=shard_index,
        num_shards=num_shards, progress=False,
        fetch=FetchConfig(concurrency=concurrency, timeout_seconds=timeout_seconds, max_retries=max_retries,
                          fetch_processes=fetch_processes, policy=policy)))
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)


@cpu_component
def merge_ingest_shards_op(shards: Input[list[Dataset]], products: Output[Dataset], metrics: Output[Metrics]):
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
