"""Run training under ``horovodrun`` on this machine: N processes talking over Gloo.

``ecom-kfp train --np N`` (and ``train_op(num_processes=N, launcher='local')``) end up here. The
command is ``horovodrun --gloo -np N -H localhost:N python -m ecom_kfp.train.worker CONFIG``:
one pod with N GPUs (or N CPU processes), no MPI or SSH needed. Several nodes go through an
MPIJob instead (:mod:`ecom_kfp.train.mpijob`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.train.config import ConfigError, TrainConfig
from ecom_kfp.train.distributed import import_horovod


def horovodrun_executable() -> str:
    """``horovodrun`` beside this interpreter (a venv need not be activated), else on PATH."""
    beside = Path(sys.executable).parent / "horovodrun"
    found = str(beside) if beside.exists() else shutil.which("horovodrun")
    if not found:
        raise RuntimeError("horovodrun not found beside the Python interpreter or on PATH; is Horovod installed?")
    return found


def horovodrun_command(config_path: str, num_processes: int) -> list[str]:
    """The command that starts ``num_processes`` workers on localhost with Gloo."""
    return [horovodrun_executable(), "--gloo", "-np", str(num_processes), "-H", f"localhost:{num_processes}",
            sys.executable, "-m", "ecom_kfp.train.worker", config_path]


def run_horovod(config: TrainConfig):
    """Run ``config`` under horovodrun and return rank 0's report.

    Raises:
        RuntimeError: Horovod is missing, or the workers failed (with horovodrun's exit code).
    """
    from ecom_kfp.train.stage import TrainReport

    import_horovod()  # fail here with a clear message rather than inside N workers
    with tempfile.TemporaryDirectory(prefix="ecom-kfp-hvd-") as tmp:
        config_path = os.path.join(tmp, "config.json")
        Path(config_path).write_text(config.to_json())
        command = horovodrun_command(config_path, config.num_processes)
        completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"horovodrun exited with {completed.returncode}: {' '.join(command)}")
    return TrainReport.from_dict(uri.read_json(ModelLayout(config.out).report))


LAUNCHERS = ("local", "mpijob")


#: Installed by manifests/base (rbac.yaml, scheduling.yaml).
TRAINER_SERVICE_ACCOUNT = "ecom-kfp-trainer"
TRAINING_PRIORITY_CLASS = "ecom-kfp-training"
#: Where Kubernetes tells a pod its own namespace.
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _own_namespace() -> str:
    """The namespace this pod runs in; ``kubeflow`` (standalone KFP's) outside a pod."""
    try:
        with open(NAMESPACE_FILE, encoding="utf-8") as fh:
            return fh.read().strip() or "kubeflow"
    except OSError:
        return "kubeflow"


def run_with_launcher(config: TrainConfig, launcher: str):
    """Run in this pod (``local``: in-process or horovodrun) or as an MPIJob (``mpijob``).

    An MPIJob gets one worker pod with one GPU per process (``config.num_processes``).

    Raises:
        ConfigError: unknown ``launcher``.
    """
    if launcher == "local":
        from ecom_kfp.train.stage import run

        return run(config)
    if launcher == "mpijob":
        from ecom_kfp.train.mpijob import MpiJobSpec, run_mpijob

        name = "ecom-kfp-train-" + hashlib.sha256(config.out.encode()).hexdigest()[:10]
        # The job goes where manifests/ installed its service account, priority class and RBAC:
        # the namespace of the pipeline pod creating it.
        spec = MpiJobSpec(name=name, namespace=_own_namespace(), workers=config.num_processes,
                          service_account=TRAINER_SERVICE_ACCOUNT, priority_class=TRAINING_PRIORITY_CLASS)
        return run_mpijob(config, spec)
    raise ConfigError(f"launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
