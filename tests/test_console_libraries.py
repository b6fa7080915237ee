"""Libraries that print to the terminal themselves (MLflow) are kept in the log by the quiet terminal.

Each case runs in a fresh interpreter, so whether ``mlflow`` was imported before the quiet block
(its loggers configured) or first inside it is what the case says.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import logging, os, sys
{before}
from ecom_kfp.console import quiet_terminal

with quiet_terminal(sys.argv[1]):
    from mlflow import MlflowClient
    MlflowClient(tracking_uri=sys.argv[2]).search_experiments(max_results=1)  # creates the store's tables
    print("the verb's summary")
mlflow_log = logging.getLogger("mlflow")
print("after:", mlflow_log.propagate, len(mlflow_log.handlers), os.environ.get("MLFLOW_CONFIGURE_LOGGING"))
"""


@pytest.mark.parametrize(("before", "after"), [
    ("import mlflow", "after: False 1 None"),  # MLflow's own set-up is put back after the block
    ("", "after: True 0 None"),  # first imported inside the block: left unconfigured, propagating
], ids=["imported-before", "imported-inside"])
def test_mlflow_log_lines_go_to_the_log_file_not_the_terminal(tmp_path: Path, before: str, after: str) -> None:
    log = tmp_path / "run.log"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(before=before), str(log), store],
                          capture_output=True, text=True, timeout=300, check=True)
    assert "Creating initial MLflow database tables" in log.read_text()
    assert done.stdout.splitlines() == ["the verb's summary", after]
    assert "mlflow" not in done.stderr.lower(), done.stderr
