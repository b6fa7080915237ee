"""Local scratch directories that a killed run does not leave behind for good.

Stages keep working files in temporary directories: ingest's sqlite scratch, the verified private
copy of a model, downloads of ``gs://`` inputs, outputs on their way to a bucket. A context manager
deletes them when the block exits, but a run killed with ``SIGKILL`` (an OOM kill, ``kill -9``, a
node drain past its grace period) never exits the block, and on a workstation or a reused node its
directories then stay in ``/tmp`` for good (ingest's scratch grows with the catalog).

:func:`scratch_dir` names each directory after the process that owns it
(``ecom-kfp-<kind>-<machine>-p<pid>-<random>``) and, before creating one, deletes those of this
package whose owner has died. ``<machine>`` is a digest of the host name, the kernel's boot id and
the PID namespace, so a directory is only judged by a process that sees the same PIDs as its
owner did: containers sharing a ``/tmp`` volume (each with its own PID namespace), or a ``/tmp``
that outlives a reboot, never delete each other's live scratch. A reused PID only delays the
cleanup of that one directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "ecom-kfp-"
_KIND = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@cache
def _machine() -> str:
    """Eight hex digits that differ between hosts, boots and PID namespaces."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:  # no /proc (macOS): the host name alone
        pass
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale(root: str | None = None) -> list[str]:
    """Delete this package's scratch directories under ``root`` (default: the temporary directory)
    whose owner process has died on this machine; return their paths."""
    root = root or tempfile.gettempdir()
    owned = re.compile(rf"{re.escape(PREFIX)}{_KIND.pattern}-{_machine()}-p(\d+)-[^/]+")
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = owned.fullmatch(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            if os.path.lexists(entry.path):  # another user's, or already being deleted by another run
                continue
            removed.append(entry.path)
            log.info("deleted %s, the scratch of process %s, which died without cleaning up",
                     entry.path, match.group(1))
    return removed


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory:
    """A new private temporary directory for ``kind`` of work (e.g. ``"ingest"``), deleted when the
    ``with`` block exits; directories of dead runs are deleted first (:func:`sweep_stale`).

    Use it as ``with scratch_dir("ingest") as path:``; ``path`` is a ``str``.

    Raises:
        ValueError: ``kind`` is not lower-case words joined by ``-``.
    """
    if not _KIND.fullmatch(kind):
        raise ValueError(f"scratch kind must be lower-case words joined by '-', got {kind!r}")
    sweep_stale()
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{kind}-{_machine()}-p{os.getpid()}-")
