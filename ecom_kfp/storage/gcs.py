"""Google Cloud Storage through google-cloud-storage.

``STORAGE_EMULATOR_HOST`` is honoured by google-cloud-storage itself; with it set, the client is
anonymous so tests can talk to ``gcp-storage-emulator`` on loopback.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

GCS_SCHEME = "gs://"


def split_gcs(uri: str) -> tuple[str, str]:
    """Split ``gs://bucket/key`` into ``(bucket, key)``.

    Raises:
        ValueError: if ``uri`` is not a ``gs://`` URI or has no bucket.
    """
    if not str(uri).startswith(GCS_SCHEME):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    rest = uri[len(GCS_SCHEME):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"gs:// URI without a bucket: {uri!r}")
    return bucket, key


@functools.lru_cache(maxsize=4)
def _client_for(emulator_host: str | None):
    from google.cloud import storage

    if emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="ecom-kfp-test", credentials=AnonymousCredentials())
    return storage.Client()


def gcs_client():
    """A cached ``google.cloud.storage.Client``; anonymous when an emulator is configured."""
    return _client_for(os.environ.get("STORAGE_EMULATOR_HOST"))


def _blob(uri: str):
    bucket, key = split_gcs(uri)
    return gcs_client().bucket(bucket).blob(key)


class GcsFilesystem:
    """``gs://bucket/key`` objects; a "directory" is a key prefix ending at a ``/``."""

    def join(self, base: str, *parts: str) -> str:
        out = base.rstrip("/")
        for part in parts:
            out = f"{out}/{str(part).strip('/')}"
        return out

    def exists(self, uri: str) -> bool:
        bucket, key = split_gcs(uri)
        if not key:
            return gcs_client().bucket(bucket).exists()
        return bool(self.list_files(uri, "", 1))

    def is_directory(self, uri: str) -> bool:
        bucket, key = split_gcs(uri)
        return not key or key.endswith("/") or not _blob(uri).exists()

    def read_bytes(self, uri: str) -> bytes:
        from google.api_core import exceptions

        try:
            return _blob(uri).download_as_bytes()
        except exceptions.NotFound as err:
            raise FileNotFoundError(f"no object at {uri}") from err

    def write_bytes(self, uri: str, data: bytes, content_type: str | None, exclusive: bool) -> bool:
        # A GCS upload is atomic per object: it appears only once complete.
        _blob(uri).upload_from_string(data, content_type=content_type or "application/octet-stream")
        return True

    def makedirs(self, uri: str) -> None:
        """Prefixes need no creation."""

    def list_files(self, prefix: str, suffix: str, limit: int | None) -> list[str]:
        bucket, key = split_gcs(prefix)
        as_dir = key if not key or key.endswith("/") else key + "/"
        out: list[str] = []
        # GCS lists names in lexicographic order, so stopping early keeps the first ``limit``.
        for blob in gcs_client().list_blobs(bucket, prefix=key):
            name = blob.name
            inside = name == key or name.startswith(as_dir)
            if inside and name.endswith(suffix) and not name.endswith("/"):
                out.append(f"{GCS_SCHEME}{bucket}/{name}")
                if limit is not None and len(out) >= limit:
                    break
        return out

    def relative_files(self, prefix: str) -> list[str]:
        base = prefix.rstrip("/") + "/"
        return sorted(uri[len(base):] for uri in self.list_files(base, "", None))

    def delete(self, uri: str) -> None:
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.NotFound):
            _blob(uri).delete()

    def delete_tree(self, prefix: str) -> None:
        for uri in self.list_files(prefix, "", None):
            self.delete(uri)

    def copy_within(self, src: str, dst: str) -> None:
        """Server-side copy."""
        from google.api_core import exceptions

        s_bucket, s_key = split_gcs(src)
        d_bucket, d_key = split_gcs(dst)
        client = gcs_client()
        try:
            client.bucket(s_bucket).copy_blob(client.bucket(s_bucket).blob(s_key), client.bucket(d_bucket), d_key)
        except exceptions.NotFound as err:
            raise FileNotFoundError(f"no object at {src} (copying to {dst})") from err

    def download(self, uri: str, local_dir: str) -> str:
        """Download the object or the tree below the prefix into ``local_dir``; returns its local path."""
        bucket, key = split_gcs(uri)
        local = os.path.join(local_dir, key.rstrip("/").rsplit("/", 1)[-1] or bucket)
        if not self.is_directory(uri):
            Path(local).write_bytes(self.read_bytes(uri))
            return local
        rels = self.relative_files(uri)
        if not rels:
            raise FileNotFoundError(f"no directory or objects at {uri}")
        for rel in rels:
            target = Path(local, *rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read_bytes(self.join(uri, rel)))
        return local
