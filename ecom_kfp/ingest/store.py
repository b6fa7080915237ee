"""The content-addressed image store of an ingest output: ``images/<sha[:2]>/<sha>.jpg``.

Identical files are stored once, and a re-run finds what an earlier run already stored, through
the products table of a completed run or the :class:`FetchJournal` of an interrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Iterator

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import IngestLayout


class ImageStore:
    """Writes images under an :class:`IngestLayout`; safe to call from several threads.

    Several processes may share one local store (each with its own ``ImageStore``): the final
    step of a write fails atomically when the file exists, so each image counts as newly stored
    once however many processes fetched it.
    """

    #: Hashes remembered as stored, per generation (two are kept): enough to skip the existence check
    #: for repeats close together, without a set that grows with the catalog.
    KNOWN_PER_GENERATION = 1 << 15

    def __init__(self, layout: IngestLayout):
        self.layout = layout
        self._known: set[str] = set()
        self._older: set[str] = set()
        self._lock = threading.Lock()

    def _remember(self, sha256: str) -> None:
        """Remember ``sha256`` as stored (hold the lock); forgets the older generation when one fills."""
        if len(self._known) >= self.KNOWN_PER_GENERATION:
            self._older, self._known = self._known, set()
        self._known.add(sha256)

    def _remembered(self, sha256: str) -> bool:
        """Whether ``sha256`` is remembered as stored (hold the lock)."""
        return sha256 in self._known or sha256 in self._older

    @property
    def is_local(self) -> bool:
        """True for a store on a local (or mounted) file system, False for ``gs://``."""
        return not uri.is_gcs(self.layout.root)

    def uri_of(self, sha256: str) -> str:
        """Where the image with this hash lives."""
        return self.layout.image(sha256)

    def has(self, sha256: str) -> bool:
        """True when the image is stored (by this run or an earlier one)."""
        with self._lock:
            if self._remembered(sha256):
                return True
        if uri.exists(self.uri_of(sha256)):
            with self._lock:
                self._remember(sha256)
            return True
        return False

    def put(self, sha256: str, data: bytes) -> bool:
        """Store ``data`` under its hash unless already there.

        Returns:
            True when this call wrote the file, False when it was already stored.
        """
        if self.has(sha256):
            return False
        with self._lock:
            # Two URLs with the same content can finish together; one write is enough.
            if self._remembered(sha256):
                return False
            self._remember(sha256)
        try:
            # Exclusive: should the hash be forgotten while this write runs, a second writer still loses.
            return uri.write_bytes(self.uri_of(sha256), data, content_type="image/jpeg", exclusive=True)
        except BaseException:
            with self._lock:
                self._known.discard(sha256)
                self._older.discard(sha256)
            raise


class FetchJournal:
    """Which source gave which stored image, written as images are fetched: ``_journal/*.jsonl``.

    ``products.parquet`` maps sources to images only once a run completes; a run killed mid-way
    (``kill -9``, an evicted pod) leaves its images in the store but no map, and its rerun would
    download all of them again. Each line here is one fetched source (``{"source", "sha256",
    "width", "height"}``); a rerun reuses every entry whose image is still stored, and a run that
    completes deletes the journal. Local outputs get each line written (unbuffered) as it
    happens; ``gs://`` outputs one object per ``GCS_BATCH`` lines (objects cannot be appended to),
    so a crash there loses at most that many.
    """

    DIRECTORY = "_journal"
    GCS_BATCH = 256

    def __init__(self, layout: IngestLayout):
        self.root = uri.join(layout.root, self.DIRECTORY)
        self._run = uuid.uuid4().hex
        self._pending: list[str] = []
        self._parts = 0
        self._file = None

    def entries(self) -> Iterator[dict]:
        """Every entry of every earlier run's journal (a line cut by a crash is skipped)."""
        if not uri.exists(self.root):
            return
        for part in uri.list_files(self.root, suffix=".jsonl"):
            for line in self._lines(part):
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and {"source", "sha256", "width", "height"} <= entry.keys():
                        yield entry

    @staticmethod
    def _lines(part: str) -> Iterator[str]:
        """The lines of one journal file: a local one (a whole run's) is read as it is iterated."""
        if uri.is_gcs(part):  # at most GCS_BATCH lines
            yield from uri.read_text(part).splitlines()
            return
        with open(part, encoding="utf-8", errors="replace") as fh:
            yield from fh

    def record(self, source: str, sha256: str, width: int, height: int) -> None:
        """Add one fetched source."""
        line = json.dumps({"source": source, "sha256": sha256, "width": width, "height": height}) + "\n"
        if uri.is_gcs(self.root):
            self._pending.append(line)
            if len(self._pending) >= self.GCS_BATCH:
                self.flush()
            return
        if self._file is None:
            os.makedirs(self.root, exist_ok=True)
            self._file = open(os.path.join(self.root, f"{self._run}.jsonl"), "a", encoding="utf-8", buffering=1)
        self._file.write(line)

    def flush(self) -> None:
        """Write what is pending (``gs://``)."""
        if self._pending:
            self._parts += 1
            uri.write_text(uri.join(self.root, f"{self._run}-{self._parts:05d}.jsonl"), "".join(self._pending))
            self._pending.clear()

    def close(self) -> None:
        """Stop recording (the entries stay until :meth:`clear`)."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def clear(self) -> None:
        """Delete every journal of this output: its products table now holds the map."""
        self.close()
        if uri.exists(self.root):
            uri.delete_tree(self.root)
