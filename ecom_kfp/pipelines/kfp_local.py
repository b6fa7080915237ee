"""Where ``kfp.local`` leaves a pipeline run, shared by ``run-local`` and its scoring step."""

from __future__ import annotations

from pathlib import Path


def find_run_dir(pipeline_root: Path, pipeline_name: str) -> Path:
    """The newest kfp.local run directory of ``pipeline_name`` under ``pipeline_root``."""
    runs = sorted(pipeline_root.glob(f"{pipeline_name}-*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(f"no run of {pipeline_name!r} under {pipeline_root}")
    return runs[-1]
