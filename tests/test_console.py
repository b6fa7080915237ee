"""The quiet terminal's progress lines: one per kfp.local task, from the log records kfp.local
writes, and those child processes relay through a file."""

from __future__ import annotations

import logging
import re

import pytest

from ecom_kfp.console import PROGRESS_FILE_ENV, ProgressRelay, _KfpTaskProgress, progress, progress_sink


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("root", logging.INFO, __file__, 0, message, None, None)


def test_parallel_tasks_of_one_name_are_each_timed_from_a_start(capsys: pytest.CaptureFixture[str]) -> None:
    """A ParallelFor logs two starts of 'batch-predict-op' before either finishes; each finish must
    be timed from a start of its own (the second was once timed from nothing: "in -0.0s")."""
    progress = _KfpTaskProgress()
    for message in ("Executing task '\x1b[96mbatch-predict-op\x1b[0m'", "Executing task 'batch-predict-op'",
                    "Task 'batch-predict-op' finished with status \x1b[92mSUCCESS\x1b[0m",
                    "Task 'batch-predict-op' finished with status SUCCESS"):
        assert progress.filter(_record(message)), "the record still reaches the log file"
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["batch-predict", "running"]] * 2 + [["batch-predict", "success"]] * 2
    for line in lines[2:]:
        seconds = re.fullmatch(r"\s*batch-predict\s+success in (\S+)s", line)
        assert seconds and float(seconds[1]) >= 0 and seconds[1] != "-0.0", line


def test_a_finish_without_a_start_says_no_duration(capsys: pytest.CaptureFixture[str]) -> None:
    _KfpTaskProgress().filter(_record("Task 'push-op' finished with status FAILURE"))
    assert capsys.readouterr().out.split() == ["push", "failure"]


def test_a_relay_shows_complete_lines_once_each(tmp_path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A child's sink appends to the relay file; the parent shows each complete line once, and a
    line still being written when it looks waits for its end."""
    relay = ProgressRelay(tmp_path / "progress.txt")
    monkeypatch.setenv(PROGRESS_FILE_ENV, relay.env[PROGRESS_FILE_ENV])
    say = progress_sink()
    say("  epoch 1/2: loss 1.000")
    with open(relay.path, "a", encoding="utf-8") as child:
        child.write("  epoch 2/2: lo")  # caught mid-write
    relay.poll()
    assert capsys.readouterr().out == "  epoch 1/2: loss 1.000\n"
    with open(relay.path, "a", encoding="utf-8") as child:
        child.write("ss 0.500\n")
    relay.poll()
    relay.poll()
    assert capsys.readouterr().out == "  epoch 2/2: loss 0.500\n"


def test_without_a_relay_progress_lines_go_to_the_terminal(monkeypatch) -> None:
    monkeypatch.delenv(PROGRESS_FILE_ENV, raising=False)
    assert progress_sink() is progress
