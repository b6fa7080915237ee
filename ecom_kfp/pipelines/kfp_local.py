"""kfp.local as ``run-local`` and its scoring step use it: the runner, and where a run is left."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def local_runs(pipeline_root: str | Path) -> Iterator[Path]:
    """Run pipelines under kfp.local in this process's environment for the block.

    kfp.local's task dispatcher swaps ``builtins.print`` for an indenting one around every task and
    puts back the one it found. A ``dsl.ParallelFor`` runs its iterations on threads, so those swaps
    interleave and can leave an indenting ``print`` in place for the rest of the process: every
    later line then starts with four more spaces per leaked level. The block puts the real one back.

    Args:
        pipeline_root: Where kfp.local writes the runs' artifacts.

    Yields:
        ``pipeline_root``.
    """
    from kfp import local

    saved_print = builtins.print
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
    try:
        yield Path(pipeline_root)
    finally:
        builtins.print = saved_print


def find_run_dir(pipeline_root: Path, pipeline_name: str) -> Path:
    """The newest kfp.local run directory of ``pipeline_name`` under ``pipeline_root``."""
    runs = sorted(pipeline_root.glob(f"{pipeline_name}-*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(f"no run of {pipeline_name!r} under {pipeline_root}")
    return runs[-1]
