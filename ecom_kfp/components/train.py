"""KFP component of the training stage (a thin wrapper over :func:`ecom_kfp.train.launch.run_with_launcher`).

(No ``from __future__ import annotations``: KFP reads the signature's annotations as objects.)
"""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from ecom_kfp.components.common import gpu_component


@gpu_component
def train_op(dataset: Input[Dataset], model: Output[Model], metrics: Output[Metrics],
             backbone: str = "efficientnetv2-b0", inputs: str = "fused", epochs: int = 10, batch_size: int = 64,
             learning_rate: float = 1e-3, image_size: int = 0, level_weights: str = "",
             business_value_weights: bool = False, title_word_buckets: int = 0, dropout: float = 0.2,
             title_dropout: float = 0.0, image_head_weight: float = 0.0, weight_decay: float = 0.05,
             label_smoothing: float = 0.1, ema_momentum: float = 0.99, fit_on_val: bool = False, weights: str = "",
             freeze_backbone_epochs: int = 0, fp16_allreduce: bool = False, seed: int = 0,
             num_processes: int = 1, mlflow_tracking_uri: str = "", experiment_name: str = "ecom-kfp",
             launcher: str = "local"):
    """Train the image + title classifier with Horovod and log it to MLflow.

    Every parameter is the ``ecom-kfp train`` flag of the same name (``ecom-kfp train --help``).

    Args:
        dataset: A tfrecord-build output (shards, labels, text models, manifest.json).
        model: Where the trained model goes: saved_model/, model.keras, history.json, report.json.
        metrics: Training throughput and final per-level metrics, shown in the Kubeflow UI.
        backbone: Image backbone: small-cnn, resnet-small, mobilenetv3-small, efficientnetv2-b0,
            efficientnet-lite0, resnet50 or xception.
        inputs: fused (image + title), image or title.
        epochs: Passes over the training split.
        batch_size: Examples per step on each Horovod process.
        learning_rate: Base learning rate, scaled by the number of processes.
        image_size: Model input side; 0 takes the dataset's stored size.
        level_weights: Comma-separated loss weight per taxonomy level, level 1 first; empty = all 1.
        business_value_weights: Weight each example's loss by its business value.
        title_word_buckets: Hash buckets of the whole-word and word-bigram title embedding; 0 = off.
        dropout: Dropout before the heads.
        title_dropout: Fused models only: share of training examples whose title is hidden.
        image_head_weight: Fused models only: loss weight of auxiliary image-only heads; 0 = off.
        weight_decay: AdamW weight decay.
        label_smoothing: Share of each label's target spread over all classes.
        ema_momentum: Momentum of the exponential moving average of the weights; 0 = off.
        fit_on_val: Train on the train and validation splits together (the final model once the
            settings were chosen on validation); no validation metrics are then computed.
        weights: URI of backbone weights (.weights.h5) to fine-tune from; empty = random init.
            ``python -m ecom_kfp.train.pretrained OUT`` writes efficientnet-lite0's ImageNet weights.
        freeze_backbone_epochs: Epochs the backbone stays frozen when fine-tuning.
        fp16_allreduce: Compress gradients to float16 for the allreduce.
        seed: Seed of initialisation, shuffling and augmentation.
        num_processes: Horovod processes (one per GPU).
        mlflow_tracking_uri: MLflow server; empty logs to a sqlite store inside the model output.
        experiment_name: MLflow experiment to log the run under.
        launcher: ``local`` runs horovodrun in this pod; ``mpijob`` creates a kubeflow.org/v2beta1
            MPIJob (one worker pod per process) on object-store URIs and waits for it.
    """
    from ecom_kfp.report import scalar_metrics
    from ecom_kfp.train.config import TrainConfig, parse_level_weights
    from ecom_kfp.train.launch import run_with_launcher

    remote = launcher == "mpijob"  # pods of an MPIJob see object-store URIs, not this pod's paths
    config = TrainConfig(data=dataset.uri if remote else dataset.path, out=model.uri if remote else model.path,
                         backbone=backbone, inputs=inputs, epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, image_size=image_size,
                         level_weights=parse_level_weights(level_weights),
                         business_value_weights=business_value_weights, title_word_buckets=title_word_buckets,
                         dropout=dropout, title_dropout=title_dropout, image_head_weight=image_head_weight,
                         weight_decay=weight_decay, label_smoothing=label_smoothing, ema_momentum=ema_momentum,
                         fit_on_val=fit_on_val, weights=weights, freeze_backbone_epochs=freeze_backbone_epochs,
                         fp16_allreduce=fp16_allreduce, seed=seed, num_processes=num_processes,
                         mlflow_tracking_uri=mlflow_tracking_uri, experiment_name=experiment_name)
    for name, value in scalar_metrics(run_with_launcher(config, launcher)).items():
        metrics.log_metric(name, value)
