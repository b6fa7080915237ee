"""KFP component of the training stage (a thin wrapper over :func:`ecom_kfp.train.launch.run_with_launcher`).

(No ``from __future__ import annotations``: KFP reads the signature's annotations as objects.)
"""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from ecom_kfp.components.common import gpu_component


@gpu_component
def train_op(dataset: Input[Dataset], model: Output[Model], metrics: Output[Metrics],
             backbone: str = "efficientnetv2-b0", epochs: int = 10, batch_size: int = 64,
             learning_rate: float = 1e-3, num_processes: int = 1, mlflow_tracking_uri: str = "",
             experiment_name: str = "ecom-kfp", launcher: str = "local"):
    """Train the image + title classifier with Horovod and log it to MLflow.

    Args:
        dataset: A tfrecord-build output (shards, labels, text models, manifest.json).
        model: Where the trained model goes: saved_model/, model.keras, history.json, report.json.
        metrics: Training throughput and final per-level metrics, shown in the Kubeflow UI.
        backbone: Image backbone: small-cnn, resnet-small, mobilenetv3-small, efficientnetv2-b0, resnet50 or xception.
        epochs: Passes over the training split.
        batch_size: Examples per step on each Horovod process.
        learning_rate: Base learning rate, scaled by the number of processes.
        num_processes: Horovod processes (one per GPU).
        mlflow_tracking_uri: MLflow server; empty logs to a sqlite store inside the model output.
        experiment_name: MLflow experiment to log the run under.
        launcher: ``local`` runs horovodrun in this pod; ``mpijob`` creates a kubeflow.org/v2beta1
            MPIJob (one worker pod per process) on object-store URIs and waits for it.
    """
    from ecom_kfp.report import scalar_metrics
    from ecom_kfp.train.config import TrainConfig
    from ecom_kfp.train.launch import run_with_launcher

    remote = launcher == "mpijob"  # pods of an MPIJob see object-store URIs, not this pod's paths
    config = TrainConfig(data=dataset.uri if remote else dataset.path, out=model.uri if remote else model.path,
                         backbone=backbone, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         num_processes=num_processes, mlflow_tracking_uri=mlflow_tracking_uri,
                         experiment_name=experiment_name)
    for name, value in scalar_metrics(run_with_launcher(config, launcher)).items():
        metrics.log_metric(name, value)
