"""A quiet terminal: progress lines and summaries on the terminal, library chatter in a log file.

TensorFlow's C++ start-up lines, gensim's INFO, MLflow's and kfp.local's logs, and everything that
child processes (kfp.local tasks, horovodrun ranks) print go to file descriptors 1 and 2 or to
Python logging. :func:`quiet_terminal` points both descriptors and the logging root at a log file
and keeps the terminal for what the user asked for: ``print`` of the verb's own summary, tqdm bars
and :func:`progress` lines, a child process's included (training ranks under horovodrun send
theirs through :class:`ProgressRelay`). ``--verbose`` leaves everything on the terminal.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TextIO

#: kfp.local logs these around every task (task names are wrapped in ANSI colour codes).
_KFP_TASK = re.compile(r"Executing task '(?P<start>[^']+)'|Task '(?P<end>[^']+)' finished with status (?P<status>\w+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_terminal: TextIO | None = None
_log_path: Path | None = None


def log_path() -> Path | None:
    """The log file of the :func:`quiet_terminal` block in force, if any."""
    return _log_path


def progress(line: str) -> None:
    """Print one progress line on the terminal, even while stdout goes to the log file."""
    # Written, not print()ed: while kfp.local runs a task, ``builtins.print`` indents what it prints.
    stream = _terminal or sys.stdout
    stream.write(line + "\n")
    stream.flush()


#: The file a child process appends its progress lines to, set by the parent that relays them
#: (:class:`ProgressRelay`): the child's own descriptors are the verb's, which go to the log.
PROGRESS_FILE_ENV = "ECOM_KFP_PROGRESS_FILE"


def progress_sink() -> Callable[[str], None]:
    """Where this process's progress lines go: the relay file its parent named, else :func:`progress`."""
    path = os.environ.get(PROGRESS_FILE_ENV)
    if not path:
        return progress

    def append(line: str) -> None:
        with open(path, "a", encoding="utf-8") as relay:
            relay.write(line.replace("\n", " ") + "\n")

    return append


class ProgressRelay:
    """Shows on the terminal the progress lines child processes append to one file.

    Args:
        path: The relay file (created empty); children find it in :data:`PROGRESS_FILE_ENV`
            (:attr:`env`) and write to it through :func:`progress_sink`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.write_bytes(b"")
        self._offset = 0

    @property
    def env(self) -> dict[str, str]:
        """This process's environment plus the relay file, for the children."""
        return {**os.environ, PROGRESS_FILE_ENV: str(self.path)}

    def poll(self) -> None:
        """Show the complete lines added since the last call (a line still being written waits)."""
        with open(self.path, "rb") as relay:
            relay.seek(self._offset)
            chunk = relay.read()
        complete = chunk.rfind(b"\n") + 1
        for line in chunk[:complete].decode("utf-8", errors="replace").splitlines():
            progress(line)
        self._offset += complete


class _KfpTaskProgress(logging.Filter):
    """Turns kfp.local's task start/finish log records into one progress line per task.

    A filter on the root logger, because kfp.local replaces the root logger's handlers (not its
    filters) for every task it runs.
    """

    def __init__(self) -> None:
        super().__init__()
        # A ParallelFor runs several tasks of one name at once, and the log names no iteration:
        # the first to finish is timed from the first start.
        self._started: dict[str, list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        match = _KFP_TASK.search(_ANSI.sub("", str(record.msg)))
        if match and match["start"]:
            self._started.setdefault(match["start"], []).append(time.perf_counter())
            progress(f"  {match['start'].removesuffix('-op'):<24} running")
        elif match:
            starts = self._started.get(match["end"])
            took = f" in {time.perf_counter() - starts.pop(0):.1f}s" if starts else ""
            progress(f"  {match['end'].removesuffix('-op'):<24} {match['status'].lower()}{took}")
        return True


#: Loggers of libraries that print to the terminal themselves, and the variables that stop them.
#: MLflow gives its ``mlflow`` logger a handler of its own writing to whatever ``sys.stderr`` is
#: (the terminal inside :func:`quiet_terminal`) and stops it propagating, when ``mlflow`` is first
#: imported, which may happen inside the block: hence ``MLFLOW_CONFIGURE_LOGGING``. Its artifact
#: transfers draw tqdm bars on ``sys.stderr`` too (push downloads the run's model), which no logger
#: carries: hence ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``, read at each transfer.
_SELF_PRINTING_LOGGERS = ("mlflow",)
_SELF_PRINTING_ENV = {"MLFLOW_CONFIGURE_LOGGING": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


@contextlib.contextmanager
def _library_loggers_to_root() -> Iterator[None]:
    """Point the self-printing libraries' loggers at the root logger (the log file) for the block."""
    saved_env = {name: os.environ.get(name) for name in _SELF_PRINTING_ENV}
    os.environ.update(_SELF_PRINTING_ENV)
    loggers = [logging.getLogger(name) for name in _SELF_PRINTING_LOGGERS]
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers[:], logger.propagate = [], True
    try:
        yield
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:], logger.propagate = handlers, propagate
        restore_environ(saved_env)


def restore_environ(saved: Mapping[str, str | None]) -> None:
    """Put environment variables back as ``saved`` holds them (``None``: it was not set)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _real_fileno(stream: TextIO) -> int | None:
    with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation):
        return stream.fileno()
    return None


@contextlib.contextmanager
def quiet_terminal(log_path: str | os.PathLike, *, verbose: bool = False,
                   stdout_to_log: bool = False) -> Iterator[Path]:
    """Send library and child-process output to ``log_path`` for the duration of the block.

    Args:
        log_path: The log file (appended to; its directory is created).
        verbose: Leave everything on the terminal (the log file still gets Python logging).
        stdout_to_log: Also send Python's ``sys.stdout`` to the log (for kfp.local, which prints
            every task's streamed output there); the verb then talks through :func:`progress`.

    Yields:
        The log file's path.
    """
    global _terminal, _log_path
    path = Path(log_path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = [handler] if not verbose else [*saved_handlers, handler]
    root.setLevel(logging.INFO)
    task_progress = _KfpTaskProgress()
    root.addFilter(task_progress)
    logging.captureWarnings(True)
    saved_fds: dict[int, int] = {}
    saved_streams = sys.stdout, sys.stderr
    libraries = contextlib.ExitStack()
    try:
        if not verbose:
            libraries.enter_context(_library_loggers_to_root())
            sys.stdout.flush()
            sys.stderr.flush()
            for fd in (1, 2):
                saved_fds[fd] = os.dup(fd)
                os.dup2(log.fileno(), fd)
            # Python-level streams that are the real descriptors keep talking to the terminal (under
            # pytest's capsys they are capture objects and stay as they are).
            if _real_fileno(sys.stdout) == 1:
                sys.stdout = open(saved_fds[1], "w", buffering=1, closefd=False)  # noqa: SIM115
            if _real_fileno(sys.stderr) == 2:
                sys.stderr = open(saved_fds[2], "w", buffering=1, closefd=False)  # noqa: SIM115
        _terminal, _log_path = sys.stdout, path
        with contextlib.redirect_stdout(log) if stdout_to_log and not verbose else contextlib.nullcontext():
            yield path
    finally:
        _terminal = _log_path = None
        if sys.stdout is not saved_streams[0]:
            sys.stdout.close()
        if sys.stderr is not saved_streams[1]:
            sys.stderr.close()
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in saved_fds.items():
            os.dup2(saved, fd)
            os.close(saved)
        libraries.close()
        logging.captureWarnings(False)
        root.removeFilter(task_progress)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        log.close()
