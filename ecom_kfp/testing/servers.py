"""Start real servers on 127.0.0.1 for tests, benchmarks and the local demo.

- :func:`gcs_emulator`: ``gcp-storage-emulator`` speaking the GCS JSON API; sets
  ``STORAGE_EMULATOR_HOST`` so :mod:`ecom_kfp.uri` and google-cloud-storage talk to it.
- :func:`mlflow_server`: ``mlflow server`` with a sqlite backend store.

Each yields once the server answers and stops it (terminate, then kill) on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any HTTP status) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def stop_process(process: subprocess.Popen) -> None:
    """Terminate a server process; kill it when it does not exit within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _bin(name: str) -> str:
    """A console script from this interpreter's environment (works without an activated venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


@contextlib.contextmanager
def _process(cmd: list[str], health_url: str, log_path: Path, timeout: float,
             env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            try:
                wait_http(health_url, timeout, process)
            except Exception as exc:
                raise RuntimeError(f"{cmd[0]} failed to start; log:\n{log_path.read_text()[-3000:]}") from exc
            yield process
        finally:
            stop_process(process)


@dataclass(frozen=True)
class GcsEmulator:
    """A running emulator: ``endpoint`` is what ``STORAGE_EMULATOR_HOST`` is set to."""

    endpoint: str

    def create_bucket(self, name: str) -> str:
        """Create ``name`` (idempotent); returns ``gs://name``."""
        from google.api_core.exceptions import Conflict

        from ecom_kfp import uri

        try:
            uri.gcs_client().create_bucket(name)
        except Conflict:
            pass
        return f"gs://{name}"


@contextlib.contextmanager
def gcs_emulator(workdir: Path, port: int | None = None) -> Iterator[GcsEmulator]:
    """Run ``gcp-storage-emulator`` (in memory) and point google-cloud-storage at it."""
    port = port or free_port()
    endpoint = f"http://{LOOPBACK}:{port}"
    cmd = [_bin("gcp-storage-emulator"), "start", "--host", LOOPBACK, "--port", str(port), "--in-memory"]
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    with _process(cmd, f"{endpoint}/storage/v1/b", workdir / "gcs-emulator.log", timeout=60):
        os.environ["STORAGE_EMULATOR_HOST"] = endpoint
        try:
            yield GcsEmulator(endpoint)
        finally:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous


@dataclass(frozen=True)
class MlflowServer:
    """A running tracking server with its model registry."""

    tracking_uri: str
    backend_store_uri: str
    artifacts_root: str


@contextlib.contextmanager
def mlflow_server(workdir: Path, port: int | None = None) -> Iterator[MlflowServer]:
    """Run ``mlflow server`` with sqlite under ``workdir``; artifacts are proxied by the server."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    backend = f"sqlite:///{(workdir / 'mlflow.db').resolve()}"
    artifacts = str((workdir / "artifacts").resolve())
    cmd = [_bin("mlflow"), "server", "--host", LOOPBACK, "--port", str(port),
           "--backend-store-uri", backend, "--artifacts-destination", artifacts,
           "--serve-artifacts", "--workers", "1"]
    url = f"http://{LOOPBACK}:{port}"
    # Job execution (on by default in the pinned MLflow) starts a job runner and seven huey consumer
    # processes for GenAI jobs, which tracking and the registry never use. Off, a start and 20 s
    # idle cost 11 CPU-seconds instead of 42.
    with _process(cmd, f"{url}/health", workdir / "mlflow-server.log", timeout=120,
                  env={"MLFLOW_ALLOW_HOSTS": "*", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}):
        yield MlflowServer(url, backend, artifacts)
