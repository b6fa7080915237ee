"""MLflow tracking of a training run (rank 0 only).

The tracking URI is, in order: the configured one, ``MLFLOW_TRACKING_URI``, or a sqlite store
``mlflow.db`` inside the run's output with artifacts beside it (so a laptop run needs no server).
A ``gs://`` output has no local directory to keep that store in, so it needs one of the first two.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ecom_kfp import uri
from ecom_kfp.console import restore_environ
from ecom_kfp.settings import ConfigError

log = logging.getLogger(__name__)
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
#: What ``mlflow.set_tracking_uri`` and ``mlflow.set_experiment`` export to the environment "so that
#: subprocesses inherit it": a later child of this process would then start its runs in this run's
#: experiment id, in whatever store it uses.
EXPORTED_ENV = (TRACKING_URI_ENV, "MLFLOW_EXPERIMENT_ID")
LOCAL_DB = "mlflow.db"
LOCAL_ARTIFACTS = "mlartifacts"
SQLITE = "sqlite:///"


def resolve_tracking_uri(configured: str, out: str) -> str:
    """The tracking URI to use for a run writing to ``out``.

    Raises:
        ConfigError: ``out`` is not local and no tracking URI is configured: a local store would
            be left in a temporary directory of the pod (or rank) that trained, and lost with it.
    """
    chosen = configured or os.environ.get(TRACKING_URI_ENV, "")
    if chosen:
        return chosen
    if not uri.is_local(out):
        raise ConfigError(f"--mlflow-tracking-uri is empty and ${TRACKING_URI_ENV} unset: with --out {out} the run's "
                          "MLflow store would stay in a temporary directory and be lost; give a tracking server")
    return f"{SQLITE}{Path(out).resolve() / LOCAL_DB}"


def artifact_location(tracking_uri: str) -> str | None:
    """``mlartifacts/`` beside a sqlite store's database file, which MLflow would otherwise put
    under the current directory; None (the server's or store's own choice) for other stores."""
    database = tracking_uri.removeprefix(SQLITE)
    if database == tracking_uri or not database or database == ":memory:":
        return None
    return (Path(database).resolve().parent / LOCAL_ARTIFACTS).as_uri()


def experiment_id(client: Any, name: str, artifact_location: str | None = None) -> str:
    """The id of MLflow experiment ``name`` (``client``: an ``MlflowClient``), created when missing.

    The members of one training_pipeline run start together, and pushes of concurrent runs may too:
    on an experiment's first run each finds it missing, and all but one creation lose the race.
    """
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else _create_experiment(client, name, artifact_location)


def _create_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    """Create experiment ``name``; when another process just did, return the id of that one."""
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.get_experiment_by_name(name).experiment_id


def init_store(tracking_uri: str) -> None:
    """Create (or migrate) a tracking store's schema now, in this process.

    A fresh sqlite store is created by its first client; members training at once would each run
    the schema migrations on the same file, and all but one fail.
    """
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)


class MlflowRun:
    """One MLflow run: params at start, metrics per epoch, artifacts at the end."""

    def __init__(self, tracking_uri: str, experiment_name: str) -> None:
        import mlflow

        self._mlflow = mlflow
        self.tracking_uri = tracking_uri
        # Restored in end(), so that a later run in this process, or a child it starts, does not
        # inherit this run's store and experiment (EXPORTED_ENV).
        self._previous_env = {name: os.environ.get(name) for name in EXPORTED_ENV}
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_experiment(experiment_id=experiment_id(mlflow.MlflowClient(tracking_uri=tracking_uri),
                                                          experiment_name, artifact_location(tracking_uri)))
        self.run = mlflow.start_run()
        self.run_id: str = self.run.info.run_id
        log.info("MLflow run %s at %s", self.run_id, tracking_uri)

    def log_params(self, params: dict[str, Any]) -> None:
        self._mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._mlflow.log_metrics(metrics, step=step)

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        self._mlflow.log_artifact(path, artifact_path=artifact_path)

    def log_artifacts(self, directory: str, artifact_path: str) -> None:
        self._mlflow.log_artifacts(directory, artifact_path=artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        self._mlflow.end_run(status=status)
        restore_environ(self._previous_env)
