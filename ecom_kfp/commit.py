"""One writer per output, and a stage's tables and report published together.

Two runs writing the same ``--out`` at once used to both succeed, leaving one run's tables next to
the other's report. Stages use two helpers:

- :func:`output_lock`: an exclusive lock on an output URI for the whole run. Local outputs lock
  ``<out>/.lock`` with ``flock`` (released by the kernel when the process dies, ``kill -9``
  included). ``gs://`` outputs create the object ``<out>/.lock`` with ``if_generation_match=0``,
  which GCS grants to exactly one creator; it is deleted when the run ends. A ``gs://`` lock left
  by a run that was killed is named in the error, with its owner and time, to be deleted by hand
  once no run is writing.
- :func:`staged_commit`: the stage writes its files under ``<out>/.staging/``; on success they
  are published into ``<out>`` with ``report.json`` first removed and last put back, so a
  ``report.json`` is only ever next to the tables of the run that wrote it; on failure the staging
  prefix is deleted and the previous run's output is left as it was. A run killed mid-stage
  (``kill -9``, an OOM-killed pod) cannot delete its staging; the next holder of the lock does.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import socket
from collections.abc import Iterator

from ecom_kfp import uri

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
#: ``flock`` errors of file systems that do not lock at all.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})
STAGING_DIR = ".staging"
REPORT_NAME = "report.json"


class OutputLocked(ValueError):
    """Another run holds the output's lock (a bad-input error: the CLI exits 2 naming ``--out``)."""


def _owner() -> str:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": now})


@contextlib.contextmanager
def output_lock(out: str, flag: str = "--out") -> Iterator[None]:
    """Hold the exclusive lock on ``out`` for the block.

    Raises:
        OutputLocked: another run holds it; the message names ``flag``, ``out`` and the holder.
    """
    target = uri.join(out, LOCK_NAME)
    if uri.is_gcs(out):
        with _gcs_lock(target, out, flag):
            yield
        return
    import fcntl

    uri.makedirs(out)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            raise OutputLocked(f"{flag}={out!r}: another run is writing there ({holder or 'unknown'}); "
                               "wait for it or use another output") from None
        except OSError as err:
            if err.errno not in _NO_LOCKS:
                raise
            # Some FUSE mounts of object stores (artifact paths on managed KFP) have no locks at all.
            log.warning("%s=%s: the file system cannot lock (%s); not locked against other runs", flag, out, err)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _owner().encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race with a new locker)


@contextlib.contextmanager
def _gcs_lock(target: str, out: str, flag: str) -> Iterator[None]:
    from google.api_core import exceptions

    bucket, key = uri.split_gcs(target)
    blob = uri.gcs_client().bucket(bucket).blob(key)

    def locked() -> OutputLocked:
        holder = ""
        with contextlib.suppress(exceptions.NotFound):
            holder = blob.download_as_text()
        return OutputLocked(f"{flag}={out!r}: another run is writing there ({holder or 'unknown'}); wait for it, "
                            f"or delete {target} if that run was killed")

    # The precondition makes creation atomic on GCS; the existence check before it is what refuses a
    # second writer on gcp-storage-emulator, which ignores preconditions (no atomicity there).
    if blob.exists():
        raise locked()
    try:
        blob.upload_from_string(_owner(), content_type="application/json", if_generation_match=0)
    except exceptions.PreconditionFailed:
        raise locked() from None
    try:
        yield
    finally:
        with contextlib.suppress(exceptions.NotFound, exceptions.PreconditionFailed):
            blob.delete(if_generation_match=blob.generation)


@contextlib.contextmanager
def staged_commit(out: str) -> Iterator[str]:
    """Yield a staging prefix under ``out``; publish everything written there when the block succeeds.

    Publishing moves each staged file to the same relative path under ``out`` (a rename locally, a
    server-side copy on ``gs://``): the old ``report.json`` is deleted first and the new one
    published last. Hold :func:`output_lock` around it so no other writer interleaves: whatever is
    in the staging prefix when it starts is then a killed run's, and is deleted first.
    """
    staging = uri.join(out, STAGING_DIR)
    uri.delete_tree(staging)
    uri.makedirs(staging)
    try:
        yield staging
        _publish(staging, out)
    finally:
        uri.delete_tree(staging)


def _publish(staging: str, out: str) -> None:
    names = uri.relative_files(staging)
    uri.delete(uri.join(out, REPORT_NAME))
    for name in sorted(names, key=lambda n: n == REPORT_NAME):  # the report last
        source, target = uri.join(staging, name), uri.join(out, name)
        if uri.is_gcs(out):
            uri.copy(source, target)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(source, target)
