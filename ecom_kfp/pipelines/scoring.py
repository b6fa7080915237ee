"""``scoring_pipeline``: score a plain catalog with a model, fanned out over shards.

``ingest -> shard-plan -> ParallelFor(batch-predict shard) -> Collected -> merge-predictions``.
Ingest fetches and checks the images once (its rejects are the products that never reach the
model); every prediction shard reads the whole products table and scores the products whose
``product_id`` hashes to it, so shards need no split step. The gather with ``dsl.Collected`` needs
a Kubeflow Pipelines backend of 2.5 or later (earlier ones refuse collected fan-ins at run creation).
"""

from kfp import dsl
from kfp.dsl import Dataset

from ecom_kfp.components import batch_predict_op, merge_predictions_op, shard_plan_op
from ecom_kfp.pipelines import steps
from ecom_kfp.pipelines.task_settings import set_resources, with_network_retries

PIPELINE_NAME = "ecom-kfp-scoring"
#: Prediction shards running at once (``dsl.ParallelFor(parallelism=...)`` takes a constant only).
MAX_PARALLEL_SHARDS = 16


@dsl.pipeline(name="predict-shard",
              description="Score one shard of a products table with its resources set from parameters.")
def predict_shard(products: Dataset, model_uri: str, registry_uri: str, shard_index: int, num_shards: int,
                  top_k: int, target_precision: float, batch_size: int, cpu_request: str, memory: str) -> Dataset:
    """One prediction shard. A pipeline of its own because kfp 2.17 drops parameter-valued resources
    of tasks placed directly inside ``dsl.ParallelFor`` (see ``task_settings``)."""
    task = batch_predict_op(products=products, model_uri=model_uri, registry_uri=registry_uri, top_k=top_k,
                            target_precision=target_precision, batch_size=batch_size, shard_index=shard_index,
                            num_shards=num_shards)
    task.set_display_name("batch-predict")
    # Retried: a registry reference is resolved (and maybe downloaded) over the network.
    return with_network_retries(set_resources(task, cpu_request, memory)).outputs["predictions"]


@dsl.pipeline(name=PIPELINE_NAME,
              description="Catalog -> ingest -> batch prediction fanned out over shards -> merged predictions "
                          "(top classes, confidence, accepted, suspect catalog labels, drift).")
def scoring_pipeline(
    catalog: str,
    model_uri: str,
    registry_uri: str = "",
    catalog_format: str = "auto",
    column_map: str = "",
    images_base: str = "",
    num_shards: int = 4,
    top_k: int = 3,
    target_precision: float = 0.0,
    batch_size: int = 128,
    ingest_concurrency: int = 64,
    allow_local_files: bool = False,
    allow_private_networks: bool = False,
    allow_gcs_buckets: str = "",
    cpu_request: str = "2",
    memory: str = "8Gi",
) -> Dataset:
    """Score every product of a catalog with a trained, pushed or registered model.

    Args:
        catalog: Catalog URI (local path, gs:// or http(s) URL of a JSONL/CSV/Parquet/Amazon file).
        model_uri: A train output, a serving version, or models:/NAME@ALIAS or models:/NAME/VERSION.
        registry_uri: MLflow tracking/registry server that resolves a models:/ reference.
        catalog_format: auto, jsonl, amazon, csv or parquet.
        column_map: FIELD=COL,... mapping products-table fields to catalog columns.
        images_base: URL or URI that relative image references are resolved against.
        num_shards: Prediction shards; each runs in its own pod.
        top_k: Classes and probabilities kept per taxonomy level.
        target_precision: Accept at the threshold reaching this precision (0 = the model's own threshold).
        batch_size: Products per call of the serving signature.
        ingest_concurrency: Parallel image downloads of ingest.
        allow_local_files: Let image references name local files (only for catalogs you wrote).
        allow_private_networks: Let image references reach loopback, private and link-local addresses.
        allow_gcs_buckets: Comma-separated gs:// buckets image references may read from.
        cpu_request: CPU request of every task.
        memory: Memory request and limit of every task.
    """
    ingest = steps.ingest(catalog=catalog, catalog_format=catalog_format, column_map=column_map,
                          images_base=images_base, business_value_uri="", concurrency=ingest_concurrency,
                          allow_local_files=allow_local_files, allow_private_networks=allow_private_networks,
                          allow_gcs_buckets=allow_gcs_buckets, cpu=cpu_request, memory=memory)
    plan = shard_plan_op(num_shards=num_shards).set_display_name("shard-plan")
    with dsl.ParallelFor(plan.output, parallelism=MAX_PARALLEL_SHARDS, name="predict-shards") as shard_index:
        shard = predict_shard(products=ingest.outputs["products"], model_uri=model_uri, registry_uri=registry_uri,
                              shard_index=shard_index, num_shards=num_shards, top_k=top_k,
                              target_precision=target_precision, batch_size=batch_size, cpu_request=cpu_request,
                              memory=memory)
    merge = merge_predictions_op(shards=dsl.Collected(shard.output), model_uri=model_uri, registry_uri=registry_uri)
    set_resources(merge.set_display_name("merge-predictions"), cpu_request, memory)
    return merge.outputs["predictions"]
