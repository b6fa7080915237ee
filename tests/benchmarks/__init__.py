"""Tests of the scripts under ``benchmarks/``."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"


def import_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py``; the scripts import their neighbours (``_common``) by bare name."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def run_benchmark(name: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600) -> dict:
    """Run ``benchmarks/<name>.py`` with ``args`` as a user does (a process of its own, this checkout on
    ``PYTHONPATH``, ``env`` on top of this process's environment) and return the JSON document it
    prints; fails with the end of its stderr when it exits non-zero."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, check=False, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)
