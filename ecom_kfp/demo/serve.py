"""Serve a directory over HTTP on loopback, e.g. the demo catalog's images for ingest to fetch.

A stdlib ``ThreadingHTTPServer`` in a daemon thread: a missing file answers 404 (the planted dead
links), and every file is served as is with a content type guessed from its name, so the HTML
page planted under ``.jpg`` arrives labelled ``image/jpeg``, as a misconfigured CDN would send it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"

log = logging.getLogger(__name__)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Logs requests at DEBUG instead of printing one stderr line per image."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's parameter name)
        log.debug("%s %s", self.address_string(), format % args)


@contextlib.contextmanager
def serve_directory(path: str | os.PathLike[str], port: int = 0) -> Iterator[str]:
    """Serve ``path`` on ``http://127.0.0.1:PORT/`` while the block runs.

    Args:
        path: A local directory.
        port: TCP port; 0 lets the OS pick a free one (no race with other servers).

    Yields:
        The base URL, ending with ``/``.

    Raises:
        NotADirectoryError: when ``path`` is not a local directory.
    """
    if not os.path.isdir(path):
        raise NotADirectoryError(f"cannot serve {path}: not a local directory")
    handler = functools.partial(_QuietHandler, directory=os.fspath(path))
    server = ThreadingHTTPServer((LOOPBACK, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=f"serve:{path}", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
