"""Read and write URIs: local paths, ``gs://bucket/key``, and any scheme a backend is registered for.

Every stage moves data across its boundary through this module (docs/design.md rule 5), so a stage
works the same on a laptop and on a cluster. The work is done by a backend per scheme
(:mod:`ecom_kfp.storage`: local files and Google Cloud Storage); this facade picks it, and does
what is the same for every backend (text, JSON, Parquet, copying between backends).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from typing import Any

from ecom_kfp.scratch import scratch_dir
from ecom_kfp.storage import Filesystem
from ecom_kfp.storage.gcs import GCS_SCHEME, GcsFilesystem
from ecom_kfp.storage.gcs import gcs_client as gcs_client  # re-exported: callers that name a bucket
from ecom_kfp.storage.gcs import split_gcs as split_gcs
from ecom_kfp.storage.local import LocalFilesystem

_LOCAL = LocalFilesystem()
#: scheme prefix -> backend; a URI without a registered scheme is a local path.
_FILESYSTEMS: dict[str, Filesystem] = {GCS_SCHEME: GcsFilesystem()}


def register_filesystem(scheme: str, filesystem: Filesystem) -> None:
    """Serve URIs starting with ``scheme`` (e.g. ``"s3://"``) from ``filesystem``."""
    _FILESYSTEMS[scheme] = filesystem


def filesystem(uri: str) -> Filesystem:
    """The backend of ``uri``."""
    text = str(uri)
    for scheme, backend in _FILESYSTEMS.items():
        if text.startswith(scheme):
            return backend
    return _LOCAL


def is_local(uri: str) -> bool:
    """True when ``uri`` is a path on this machine (no registered scheme)."""
    return filesystem(uri) is _LOCAL


def is_gcs(uri: str) -> bool:
    """True when ``uri`` names a Google Cloud Storage object or prefix."""
    return str(uri).startswith(GCS_SCHEME)


def join(base: str, *parts: str) -> str:
    """Join URI parts with ``/`` (local paths keep the OS separator semantics of ``os.path``)."""
    return filesystem(base).join(str(base), *parts)


def split(uri: str) -> tuple[str, str]:
    """``(parent, name)`` of the file or directory ``uri`` (a local path made absolute first, so a
    bare name has a parent too); ``join(*split(uri))`` names the same thing.

    Raises:
        ValueError: ``uri`` has no parent (a bucket, or ``/``).
    """
    if is_local(uri):
        parent, name = os.path.split(os.path.abspath(uri))
    else:
        parent, _, name = str(uri).rstrip("/").rpartition("/")
    if not name or not parent or parent.endswith(":/"):
        raise ValueError(f"{uri} has no parent directory")
    return parent, name


def exists(uri: str) -> bool:
    """True when a file exists at ``uri``, or a directory (for GCS: a non-empty prefix, or a bucket)."""
    return filesystem(uri).exists(uri)


def read_bytes(uri: str) -> bytes:
    """Read a whole object or file.

    Raises:
        FileNotFoundError: when nothing exists at ``uri``.
    """
    return filesystem(uri).read_bytes(uri)


def write_bytes(uri: str, data: bytes, content_type: str | None = None, *, exclusive: bool = False) -> bool:
    """Write ``data`` atomically: readers never see a half-written local file or object.

    Args:
        uri: Local path or ``gs://`` URI.
        data: The bytes.
        content_type: MIME type of a ``gs://`` object.
        exclusive: Local files: keep a file already at ``uri`` instead of replacing it, and say so,
            so that of several threads or processes writing the same path exactly one wins
            (content-addressed stores). ``gs://`` objects are always uploaded.

    Returns:
        False when ``exclusive`` and a local file was already at ``uri``; True when this call wrote it.
    """
    return filesystem(uri).write_bytes(uri, data, content_type, exclusive)


def read_text(uri: str) -> str:
    """Read a UTF-8 text file."""
    return read_bytes(uri).decode("utf-8")


def write_text(uri: str, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    write_bytes(uri, text.encode("utf-8"), content_type="text/plain; charset=utf-8")


def read_json(uri: str) -> Any:
    """Read a JSON document."""
    return json.loads(read_bytes(uri))


def write_json(uri: str, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (stable for diffs and golden files)."""
    write_bytes(uri, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode(),
                content_type="application/json")


def makedirs(uri: str) -> None:
    """Create a local directory; a no-op on object stores, where prefixes need no creation."""
    filesystem(uri).makedirs(uri)


def list_files(prefix: str, suffix: str = "", limit: int | None = None) -> list[str]:
    """List the files at or below ``prefix``, recursively, sorted as strings.

    ``prefix`` names a file or a directory on every backend: ``gs://b/data`` lists ``data`` and
    ``data/...`` but not ``data2/...``, as a local path would.

    Args:
        prefix: A local path or ``gs://`` URI.
        suffix: Keep only names ending with it (e.g. ``".parquet"``).
        limit: Return at most this many files (the first ones in sorted order).

    Returns:
        File URIs; empty when nothing is there.
    """
    if limit is not None and limit <= 0:
        return []
    return filesystem(prefix).list_files(prefix, suffix, limit)


def delete(uri: str) -> None:
    """Delete one file or object; missing is not an error."""
    filesystem(uri).delete(uri)


def delete_tree(prefix: str) -> None:
    """Delete the file or everything below the directory ``prefix``; missing is not an error."""
    filesystem(prefix).delete_tree(prefix)


def copy(src: str, dst: str) -> None:
    """Copy one file between any two URIs (server-side within one object store).

    Raises:
        FileNotFoundError: when nothing exists at ``src``.
    """
    source = filesystem(src)
    if source is filesystem(dst):
        source.copy_within(src, dst)
    else:
        write_bytes(dst, read_bytes(src))


def relative_files(prefix: str) -> list[str]:
    """Paths of all files below ``prefix``, relative to it, with ``/`` separators, sorted."""
    return filesystem(prefix).relative_files(prefix)


def copy_tree(src: str, dst: str) -> list[str]:
    """Copy every file below ``src`` to the same relative path below ``dst``.

    Returns:
        The relative paths copied, sorted (empty for an empty local directory).

    Raises:
        FileNotFoundError: when ``src`` is neither a local directory nor a non-empty object prefix.
    """
    rels = relative_files(src)
    if not rels and not (is_local(src) and os.path.isdir(src)):
        raise FileNotFoundError(f"no directory or objects at {src}")
    for rel in rels:
        copy(join(src, *rel.split("/")), join(dst, *rel.split("/")))
    return rels


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """Yield a local path holding the file or tree at ``uri`` (a temporary download elsewhere).

    Raises:
        FileNotFoundError: when nothing exists at ``uri``.
    """
    if is_local(uri):
        if not os.path.exists(uri):
            raise FileNotFoundError(f"no file or directory at {uri}")
        yield uri
        return
    with scratch_dir("download") as tmp:
        yield filesystem(uri).download(uri, tmp)


@contextlib.contextmanager
def local_output_dir(uri: str) -> Iterator[str]:
    """Yield a local directory whose contents end up at ``uri``.

    For a local ``uri`` the directory is ``uri`` itself. Elsewhere it is a temporary directory
    uploaded when the block exits without an error, for libraries that only write local files.
    """
    if is_local(uri):
        os.makedirs(uri, exist_ok=True)
        yield uri
        return
    with scratch_dir("out") as tmp:
        yield tmp
        copy_tree(tmp, uri)


def read_parquet(uri: str, columns: list[str] | None = None, filters: list | None = None):
    """Read a Parquet file at any URI into a ``pyarrow.Table``; ``filters`` (as ``pyarrow.parquet.read_table``
    takes them) keep only matching rows and skip the row groups whose statistics exclude them."""
    import pyarrow.parquet as pq

    if is_local(uri):
        return pq.read_table(uri, columns=columns, filters=filters)
    return pq.read_table(io.BytesIO(read_bytes(uri)), columns=columns, filters=filters)


def write_parquet(table, uri: str) -> None:
    """Write a ``pyarrow.Table`` as Parquet (zstd) to any URI, atomically."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_bytes(uri, buf.getvalue())
