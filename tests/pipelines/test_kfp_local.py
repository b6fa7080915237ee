"""``local_runs``: kfp.local set up for this process, and ``builtins.print`` as it was afterwards."""

import builtins
from pathlib import Path

import pytest
from kfp.local import logging_utils

from ecom_kfp.pipelines.kfp_local import local_runs


def test_print_is_put_back_after_parallel_tasks_leave_an_indenting_one(tmp_path: Path) -> None:
    """kfp.local's dispatcher wraps every task in ``logging_utils.indented_print``; two ParallelFor
    iterations on threads can enter and leave in this order (replayed here on one thread, with
    kfp's own context manager), which leaves the second's indenting ``print`` installed."""
    real_print = builtins.print
    with local_runs(tmp_path / "root") as root:
        assert root == tmp_path / "root"
        first, second = logging_utils.indented_print(), logging_utils.indented_print()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        second.__exit__(None, None, None)
        assert builtins.print is not real_print  # what kfp.local leaves behind on its own
    assert builtins.print is real_print


def test_print_is_put_back_when_a_run_fails(tmp_path: Path) -> None:
    real_print = builtins.print
    with pytest.raises(RuntimeError, match="task failed"), local_runs(tmp_path / "root"):
        logging_utils.indented_print().__enter__()  # a task that never got to put print back
        raise RuntimeError("task failed")
    assert builtins.print is real_print
