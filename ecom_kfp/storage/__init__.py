"""Storage backends behind :mod:`ecom_kfp.uri`, one per URI scheme (like TFX's ``fileio`` plugins).

:mod:`ecom_kfp.uri` is the only module stages call; it picks a backend by the URI's scheme:
:class:`~ecom_kfp.storage.gcs.GcsFilesystem` for ``gs://``, and
:class:`~ecom_kfp.storage.local.LocalFilesystem` for plain paths. Another object store is one
class with the methods of :class:`Filesystem`, registered with
:func:`ecom_kfp.uri.register_filesystem`.
"""

from __future__ import annotations

from typing import Protocol


class Filesystem(Protocol):
    """What a backend does; every argument is a URI of the backend's own scheme."""

    def join(self, base: str, *parts: str) -> str: ...

    def exists(self, uri: str) -> bool: ...

    def read_bytes(self, uri: str) -> bytes: ...

    def write_bytes(self, uri: str, data: bytes, content_type: str | None, exclusive: bool) -> bool: ...

    def makedirs(self, uri: str) -> None: ...

    def list_files(self, prefix: str, suffix: str, limit: int | None) -> list[str]: ...

    def relative_files(self, prefix: str) -> list[str]: ...

    def delete(self, uri: str) -> None: ...

    def delete_tree(self, prefix: str) -> None: ...

    def copy_within(self, src: str, dst: str) -> None: ...

    def is_directory(self, uri: str) -> bool: ...

    def download(self, uri: str, local_dir: str) -> str: ...
