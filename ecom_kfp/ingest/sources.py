"""Image references: resolve a catalog's reference to a fetchable source and tell its kind.

A source is an ``http(s)://`` URL, a ``gs://`` URI or a local path. Relative references are
resolved against ``--images-base`` (a URL, ``gs://`` prefix or directory), or, without one,
against the catalog's own directory, the way a relative link resolves against its document.
"""

from __future__ import annotations

import os
import posixpath
import urllib.parse

from ecom_kfp import uri

HTTP = "http"
GCS = "gcs"
LOCAL = "local"


def kind(source: str) -> str | None:
    """``http``, ``gcs`` or ``local`` for a resolved source; None for a scheme we cannot fetch."""
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return HTTP
    if scheme == "gs":
        return GCS
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return LOCAL
    return None


def catalog_dir(catalog_uri: str) -> str:
    """The directory (or ``gs://`` prefix) holding the catalog."""
    if uri.is_gcs(catalog_uri):
        return posixpath.dirname(catalog_uri)
    return os.path.dirname(os.path.abspath(catalog_uri))


def resolve(reference: str, base: str) -> str:
    """Resolve ``reference`` against ``base``; absolute URLs, URIs and paths pass through.

    ``file://`` URLs become local paths.
    """
    reference = reference.strip()
    parts = urllib.parse.urlsplit(reference)
    if parts.scheme == "file":
        return urllib.parse.unquote(parts.path)
    if parts.scheme or os.path.isabs(reference):
        return reference
    if kind(base) == HTTP:
        return urllib.parse.urljoin(base.rstrip("/") + "/", reference)
    return uri.join(base, reference)
