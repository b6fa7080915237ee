"""KFP component of the training stage (logic in :mod:`ecom_kfp.train`, :func:`ecom_kfp.train.run`).

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""


from kfp.dsl import Dataset, Input, Metrics, Model, Output

from ecom_kfp.components.common import gpu_component
from ecom_kfp.settings import component_doc
from ecom_kfp.train.config import TrainConfig


@gpu_component
@component_doc(TrainConfig, "Train the image + title classifier (Horovod across GPUs) and log it to MLflow.",
               dataset="A tfrecord-build output (shards, labels, text models, manifest.json).",
               model="The trained model: saved_model/, model.keras, history.json, report.json.",
               metrics="Training throughput and final per-level metrics, shown in the Kubeflow UI.")
def train_op(dataset: Input[Dataset], model: Output[Model], metrics: Output[Metrics], preset: str = "cpu-small",
             backbone: str = "", inputs: str = "fused", epochs: int = 0, batch_size: int = 0,
             learning_rate: float = 0.0, image_size: int = 0, level_weights: list[float] = [1.0, 1.0, 3.0],  # noqa: B006
             business_value_weights: bool = False, title_word_buckets: int = 32768, title_char_buckets: int = 65536,
             dropout: float = 0.3, title_dropout: float = 0.0, image_head_weight: float = 0.0, fusion: str = "joint",
             late_fusion_weight: float = 0.4, weight_decay: float = 0.05,
             label_smoothing: float = 0.1, ema_momentum: float = 0.99, augment: bool = True,
             fit_on_val: bool = False, weights: str = "", freeze_backbone_epochs: int = 0,
             frozen_backbone: bool = False, frozen_backbone_until: str = "", precision: str = "auto",
             jit_compile: bool = False, fp16_allreduce: bool = False, seed: int = 0, num_processes: int = 1,
             launcher: str = "local", mlflow_tracking_uri: str = "", experiment_name: str = "ecom-kfp"):
    from ecom_kfp.report import scalar_metrics
    from ecom_kfp.train import TrainConfig, run

    remote = launcher == "mpijob"  # pods of an MPIJob see object-store URIs, not this pod's paths
    config = TrainConfig(data=dataset.uri if remote else dataset.path, out=model.uri if remote else model.path,
                         preset=preset, backbone=backbone, inputs=inputs, epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, image_size=image_size, level_weights=list(level_weights),
                         business_value_weights=business_value_weights, title_word_buckets=title_word_buckets,
                         title_char_buckets=title_char_buckets, dropout=dropout, title_dropout=title_dropout,
                         image_head_weight=image_head_weight, fusion=fusion, late_fusion_weight=late_fusion_weight,
                         weight_decay=weight_decay, label_smoothing=label_smoothing, ema_momentum=ema_momentum,
                         augment=augment, fit_on_val=fit_on_val, weights=weights,
                         freeze_backbone_epochs=freeze_backbone_epochs, frozen_backbone=frozen_backbone,
                         frozen_backbone_until=frozen_backbone_until,
                         precision=precision, jit_compile=jit_compile,
                         fp16_allreduce=fp16_allreduce, seed=seed, num_processes=num_processes, launcher=launcher,
                         mlflow_tracking_uri=mlflow_tracking_uri, experiment_name=experiment_name)
    for name, value in scalar_metrics(run(config)).items():
        metrics.log_metric(name, value)
