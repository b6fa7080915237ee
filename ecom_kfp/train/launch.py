"""Run training under ``horovodrun`` on this machine: N processes talking over Gloo.

``ecom-kfp train --np N``, ``--launcher horovodrun`` and ``train_op(num_processes=N)`` end up here. The
command is ``horovodrun --gloo -np N -H localhost:N python -m ecom_kfp.train.worker CONFIG``:
one pod with N GPUs (or N CPU processes), no MPI or SSH needed. Several nodes go through an
MPIJob instead (:mod:`ecom_kfp.train.mpijob`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ecom_kfp.console import ProgressRelay
from ecom_kfp.scratch import scratch_dir
from ecom_kfp.train.config import TrainConfig
from ecom_kfp.train.distributed import import_horovod
from ecom_kfp.train.report import TrainReport

#: How often the workers' progress lines are passed on while they run.
RELAY_SECONDS = 0.5


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


def run_horovod(config: TrainConfig) -> TrainReport:
    """Run ``config`` under horovodrun and return rank 0's report.

    Raises:
        RuntimeError: Horovod is missing, or the workers failed (with horovodrun's exit code).
    """
    import_horovod()  # fail here with a clear message rather than inside N workers
    with scratch_dir("hvd") as tmp:
        config_path = os.path.join(tmp, "config.json")
        Path(config_path).write_text(config.to_json())
        command = horovodrun_command(config_path, config.num_processes)
        # The workers' output goes where this process's does (the log); their epoch lines come
        # through the relay file to the terminal.
        relay = ProgressRelay(os.path.join(tmp, "progress.txt"))
        with subprocess.Popen(command, env=relay.env) as process:
            try:
                while process.poll() is None:
                    time.sleep(RELAY_SECONDS)
                    relay.poll()
            except BaseException:  # Ctrl-C: stop the workers, as subprocess.run would
                process.kill()
                raise
            relay.poll()  # what the chief wrote after the last look
    if process.returncode != 0:
        raise RuntimeError(f"horovodrun exited with {process.returncode}: {' '.join(command)}")
    return TrainReport.read(config.out)
