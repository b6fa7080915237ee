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


TRANSFER = """
import sys
from pathlib import Path
import mlflow
from ecom_kfp.console import quiet_terminal

mlflow.set_tracking_uri(sys.argv[2])
files = Path(sys.argv[3])
for i in range(3):
    (files / f"part-{i}.txt").write_text("x")
experiment = mlflow.create_experiment("bars", artifact_location=str(files.parent / "artifacts"))
with mlflow.start_run(experiment_id=experiment) as run:
    mlflow.log_artifacts(str(files), "model")
with quiet_terminal(sys.argv[1]):
    mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="model", dst_path=sys.argv[4])
    print("the verb's summary")
print("-- after the block --", file=sys.stderr, flush=True)
mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="model", dst_path=sys.argv[5])
"""


def test_mlflow_artifact_progress_bars_stay_off_the_terminal_inside_the_block(tmp_path: Path) -> None:
    """Push downloads the run's model: MLflow draws a tqdm bar for it, which no logger carries."""
    files, inside, after = (tmp_path / name for name in ("files", "inside", "after"))
    files.mkdir()
    done = subprocess.run([sys.executable, "-c", TRANSFER, str(tmp_path / "run.log"),
                           f"sqlite:///{tmp_path / 'mlflow.db'}", str(files), str(inside), str(after)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (inside / "model").iterdir()) == ["part-0.txt", "part-1.txt", "part-2.txt"]
    inside_block, marker, after_block = done.stderr.partition("-- after the block --")
    assert marker and done.stdout.strip() == "the verb's summary"
    assert "Downloading artifacts" not in inside_block, inside_block
    # The same transfer after the block draws its bar: the setting is put back, and MLflow does draw one here.
    assert "Downloading artifacts" in after_block, after_block
