"""``training_pipeline``: catalog -> blessed, registered product-category classifier.

``ingest -> dedupe -> tfrecord-build -> ParallelFor(seeds: train) -> ensemble -> evaluate -> push``
(``seed-plan`` checks the seeds beside ingest, before any member trains);
push runs only when evaluate blesses the model (``dsl.If``). Every argument is a run parameter in
the Kubeflow UI. One model is trained per seed, each in its own pod; ensemble averages them (one
seed: it publishes that model unchanged), so ``seeds=[0, 1]`` costs one model's wall time and
twice its GPU hours.
"""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model

from ecom_kfp.components import ensemble_op, evaluate_op, push_op, seed_plan_op, train_op
from ecom_kfp.ensemble.config import MAX_MEMBERS
from ecom_kfp.pipelines import steps
from ecom_kfp.pipelines.task_settings import DEFAULT_GPU_NODE_SELECTOR, on_gpu_pool, set_resources, with_network_retries

PIPELINE_NAME = "ecom-kfp-training"
#: Push registers a model and copies a SavedModel: light, so a fixed request (see push_if_blessed).
PUSH_CPU = "1"
PUSH_MEMORY = "4Gi"
#: Members training at once. ``dsl.ParallelFor(parallelism=...)`` takes a constant only; the
#: ensemble stage takes at most this many members.
MAX_PARALLEL_MEMBERS = MAX_MEMBERS


@dsl.pipeline(name="push-if-blessed",
              description="Register the model and copy it for serving when it was blessed.")
def push_if_blessed(blessed: bool, model: Input[Model], evaluation: Input[Artifact],
                    registry_uri: str, serving_uri: str, registered_model_name: str):
    """Push under ``dsl.If(blessed)``, as a pipeline of its own for two kfp 2.17 reasons.

    kfp.local resolves an ``If`` condition on a pipeline input but not on a named output of a
    task (``evaluate-op.blessed``), so the gate reads ``blessed`` as this pipeline's input. And
    the compiler drops parameter-valued resources of a task directly inside ``dsl.If`` (see
    ``task_settings``), so push gets fixed resources.
    """
    with dsl.If(blessed == True, name="blessed"):  # noqa: E712 (a KFP condition, not Python)
        push = push_op(model=model, evaluation=evaluation, registry_uri=registry_uri,
                       serving_uri=serving_uri, registered_model_name=registered_model_name)
        with_network_retries(set_resources(push.set_display_name("push"), PUSH_CPU, PUSH_MEMORY))


@dsl.pipeline(name="train-member",
              description="Train one model of the run on the GPU pool, with its resources set from parameters.")
def train_member(dataset: Input[Dataset], seed: int, preset: str, backbone: str, epochs: int, batch_size: int,
                 learning_rate: float, image_size: int, precision: str, fit_on_val: bool, fusion: str,
                 weights: str, frozen_backbone: bool, num_gpus: int,
                 gpu_accelerator: str, gpu_node_selector: dict, launcher: str, mlflow_tracking_uri: str,
                 experiment_name: str, train_cpu_request: str, train_memory: str) -> Model:
    """One member. A pipeline of its own because kfp 2.17 drops parameter-valued resources of tasks
    placed directly inside ``dsl.ParallelFor`` (see ``task_settings``)."""
    train = train_op(dataset=dataset, preset=preset, backbone=backbone, epochs=epochs, batch_size=batch_size,
                     learning_rate=learning_rate, image_size=image_size, precision=precision,
                     fit_on_val=fit_on_val, fusion=fusion, weights=weights, frozen_backbone=frozen_backbone,
                     seed=seed, num_processes=num_gpus,
                     mlflow_tracking_uri=mlflow_tracking_uri, experiment_name=experiment_name, launcher=launcher)
    set_resources(train.set_display_name("train"), train_cpu_request, train_memory)
    on_gpu_pool(train, gpu_accelerator, num_gpus, gpu_node_selector)
    return train.outputs["model"]


@dsl.pipeline(name=PIPELINE_NAME,
              description="E-commerce catalog -> deduplicated TFRecords -> Horovod-trained "
                          "hierarchical category classifier -> evaluation -> MLflow registry and "
                          "serving path when blessed.")
def training_pipeline(
    catalog: str,
    catalog_format: str = "auto",
    column_map: str = "",
    images_base: str = "",
    business_value_uri: str = "",
    taxonomy_uri: str = "",
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
    train_preset: str = "gpu",
    backbone: str = "",
    epochs: int = 0,
    batch_size: int = 0,
    learning_rate: float = 0.0,
    precision: str = "auto",
    fit_on_val: bool = False,
    fusion: str = "joint",
    weights: str = "",
    frozen_backbone: bool = False,
    seeds: list = [0],  # noqa: B006 (KFP reads the default from the signature)
    num_gpus: int = 1,
    gpu_accelerator: str = "nvidia.com/gpu",
    gpu_node_selector: dict = DEFAULT_GPU_NODE_SELECTOR,
    train_launcher: str = "local",
    mlflow_tracking_uri: str = "",
    experiment_name: str = "ecom-kfp",
    registered_model_name: str = "ecom-product-category",
    serving_uri: str = "",
    confidence_threshold: float = 0.5,
    min_weighted_score: float = 0.0,
    max_test_examples: int = 0,
    cpu_request: str = "2",
    memory: str = "8Gi",
    train_cpu_request: str = "8",
    train_memory: str = "32Gi",
):
    """Train, evaluate and (when blessed) register a product-category classifier.

    Args:
        catalog: Catalog URI (local path, gs:// or http(s) URL of a JSONL/CSV/Parquet/Amazon file).
        catalog_format: auto, jsonl, amazon, csv or parquet.
        column_map: FIELD=COL,... mapping products-table fields to catalog columns; a category
            path from several columns is written with '>' (category_path=a>b>c).
        images_base: URL or URI that relative image references are resolved against.
        business_value_uri: Optional CSV of business value per category, used to weight metrics.
        taxonomy_uri: Optional taxonomy file (Google Product Taxonomy format) for the label space.
        ingest_concurrency: Parallel image downloads per ingest pod.
        allow_local_files: Let image references name local files (only for catalogs you wrote).
        allow_private_networks: Let image references reach loopback, private and link-local addresses.
        allow_gcs_buckets: Comma-separated gs:// buckets image references may read from.
        near_duplicate_threshold: Max perceptual-hash Hamming distance of near-duplicate images.
        image_size: Side of the square model input in pixels.
        split_fractions: train,val,test fractions (split by duplicate group).
        max_levels: Taxonomy depth: number of category levels the model predicts.
        min_class_count: Classes with fewer training products are folded into 'other' (1 = keep every class seen).
        title_attributes: Comma-separated catalog columns the model reads after the title, a word each
            (e.g. gender,usage,season,baseColour); empty = the title alone.
        train_preset: Training settings for the hardware: gpu (efficientnetv2-b0, batch 128 and
            learning rate 2e-3 per GPU, 30 epochs) or cpu-small (small-cnn, batch 32, learning rate
            3e-3, 18 epochs: the measured best on 2 CPU cores); it fills backbone, epochs,
            batch_size and learning_rate left at their empty/0 defaults. The model trains at
            image_size.
        backbone: Image backbone architecture (efficientnetv2-b0, ... or small-cnn for CPU runs);
            empty = the preset's.
        epochs: Training epochs; 0 = the preset's.
        batch_size: Examples per step on each GPU; the global batch is this times num_gpus (the
            learning rate is scaled by num_gpus too); 0 = the preset's.
        learning_rate: Base learning rate of one GPU; 0 = the preset's.
        precision: auto (mixed_bfloat16 on A100/H100, mixed_float16 on older GPUs, float32 on
            CPU), float32, mixed_float16 or mixed_bfloat16.
        fit_on_val: Train on the train and validation splits together (a final model once the
            settings were chosen on validation); the test split still decides the blessing.
        fusion: joint (one set of heads on the image and title features together) or late (a
            classifier per branch, their logits added: the image moves only answers the title is
            unsure of; the better of the two on myntra-dev, docs/training.md).
        weights: Backbone weights to start from: 'imagenet' (efficientnet-lite0's ImageNet
            weights, shipped in the image), a .weights.h5 URI, or empty for random initialisation.
        frozen_backbone: Keep the weights' backbone frozen and compute its image features once per
            product (needs weights). With backbone=efficientnet-lite0, weights=imagenet and
            fusion=late: the best model measured on myntra-dev (README, "Model quality").
        seeds: Training seeds, one model per seed, each trained in its own pod at the same time
            (1 to 16 distinct integers, checked before any model trains). With two or more,
            ensemble averages the models' probabilities and the average is evaluated and pushed
            (serving costs the sum of the members); with one, that model is evaluated and pushed
            unchanged.
        num_gpus: GPUs for the train task, also its number of Horovod processes (at least 1).
        gpu_accelerator: Kubernetes extended resource name of the GPU.
        gpu_node_selector: Node labels of the GPU pool, e.g. the GPU model label.
        train_launcher: local (Horovod inside the train pod) or mpijob (MPI Operator MPIJob).
        mlflow_tracking_uri: MLflow tracking and model registry URI.
        experiment_name: MLflow experiment for the training runs.
        registered_model_name: MLflow registered model the blessed model is pushed to.
        serving_uri: Directory or gs:// prefix the blessed SavedModel is copied to for serving.
        confidence_threshold: Predictions below this confidence count as abstentions.
        min_weighted_score: Minimum business-value-weighted score for the model to be blessed.
        max_test_examples: Evaluate scores about the first N test records, a fair sample, and
            judges the model on them (bounds its memory and time on a large catalog,
            docs/scaling.md); 0 = the whole test split.
        cpu_request: CPU request of the data, ensemble and evaluation tasks.
        memory: Memory request and limit of the data, ensemble and evaluation tasks (the ensemble
            loads the members that evaluate then loads again as one model, so one figure fits both).
        train_cpu_request: CPU request of the train task.
        train_memory: Memory request and limit of the train task.
    """
    ingest = steps.ingest(catalog=catalog, catalog_format=catalog_format, column_map=column_map,
                          images_base=images_base, business_value_uri=business_value_uri,
                          concurrency=ingest_concurrency, allow_local_files=allow_local_files,
                          allow_private_networks=allow_private_networks, allow_gcs_buckets=allow_gcs_buckets,
                          cpu=cpu_request, memory=memory)
    build = steps.dedupe_and_build(
        ingest.outputs["products"], near_threshold=near_duplicate_threshold,
        taxonomy_uri=taxonomy_uri, image_size=image_size, split_fractions=split_fractions,
        max_levels=max_levels, min_class_count=min_class_count, title_attributes=title_attributes,
        cpu=cpu_request, memory=memory)

    members = seed_plan_op(seeds=seeds).set_display_name("seed-plan")
    with dsl.ParallelFor(members.output, parallelism=MAX_PARALLEL_MEMBERS, name="seeds") as seed:
        member = train_member(dataset=build.outputs["dataset"], seed=seed, preset=train_preset, backbone=backbone,
                              epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                              image_size=image_size, precision=precision, fit_on_val=fit_on_val, fusion=fusion,
                              weights=weights, frozen_backbone=frozen_backbone, num_gpus=num_gpus,
                              gpu_accelerator=gpu_accelerator, gpu_node_selector=gpu_node_selector,
                              launcher=train_launcher, mlflow_tracking_uri=mlflow_tracking_uri,
                              experiment_name=experiment_name, train_cpu_request=train_cpu_request,
                              train_memory=train_memory)
    ensemble = ensemble_op(models=dsl.Collected(member.output))
    set_resources(ensemble.set_display_name("ensemble"), cpu_request, memory)
    model = ensemble.outputs["ensemble"]

    evaluate = evaluate_op(model=model, dataset=build.outputs["dataset"],
                           business_value_uri=business_value_uri,
                           mlflow_tracking_uri=mlflow_tracking_uri,
                           registered_model_name=registered_model_name,
                           confidence_threshold=confidence_threshold,
                           min_weighted_score=min_weighted_score,
                           max_test_examples=max_test_examples)
    set_resources(evaluate.set_display_name("evaluate"), cpu_request, memory)

    push_if_blessed(blessed=evaluate.outputs["blessed"], model=model,
                    evaluation=evaluate.outputs["evaluation"], registry_uri=mlflow_tracking_uri,
                    serving_uri=serving_uri, registered_model_name=registered_model_name)
