"""The content-addressed image store of an ingest output: ``images/<sha[:2]>/<sha>.jpg``.

Identical files are stored once, and a re-run finds what an earlier run already stored.
"""

from __future__ import annotations

import threading

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import IngestLayout


class ImageStore:
    """Writes images under an :class:`IngestLayout`; safe to call from several threads.

    Several processes may share one local store (each with its own ``ImageStore``): the final
    step of a write fails atomically when the file exists, so each image counts as newly stored
    once however many processes fetched it.
    """

    def __init__(self, layout: IngestLayout):
        self.layout = layout
        self._known: set[str] = set()
        self._lock = threading.Lock()

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
            if sha256 in self._known:
                return True
        if uri.exists(self.uri_of(sha256)):
            with self._lock:
                self._known.add(sha256)
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
            if sha256 in self._known:
                return False
            self._known.add(sha256)
        try:
            return uri.write_bytes(self.uri_of(sha256), data, content_type="image/jpeg", exclusive=True)
        except BaseException:
            with self._lock:
                self._known.discard(sha256)
            raise
