"""Publish a model to a versioned serving location, verify it, and only then move ``latest``.

Layout under the serving root (local directory or ``gs://`` prefix)::

    <serving_uri>/<name>/<version>/...   the payload (see :mod:`ecom_kfp.push.payload`)
    <serving_uri>/<name>/latest          JSON pointer: version, uri, content_sha256

A published version is immutable: an existing file with the same content is kept (so a re-run
resumes an interrupted copy), one with different content stops the push with
:class:`ServingConflictError` instead of being overwritten (e.g. a registry that was reset and
hands out version numbers the serving bucket already used). ``latest`` is written once, after
every file has been read back and matched by size and SHA-256, so a half-copied version is
never ``latest``; each file write is itself atomic (:func:`ecom_kfp.uri.write_bytes`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.push.payload import ServingPayload

log = logging.getLogger(__name__)
LATEST = "latest"


class ServingConflictError(RuntimeError):
    """The version directory holds a file with other content than the payload's."""


class VerificationError(RuntimeError):
    """The copy does not match the payload (missing file, wrong size or hash)."""


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` did."""

    version_uri: str
    copied: int
    already_present: int
    extra_files: list[str]
    verified_files: int
    verified_bytes: int


def version_uri(serving_uri: str, name: str, version: str) -> str:
    """``<serving_uri>/<name>/<version>``."""
    return uri.join(serving_uri, name, str(version))


def latest_uri(serving_uri: str, name: str) -> str:
    """``<serving_uri>/<name>/latest``."""
    return uri.join(serving_uri, name, LATEST)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(payload: ServingPayload, target: str) -> tuple[int, int, list[str]]:
    """Read every file back and compare size and hash.

    Returns:
        (files verified, bytes verified, files present that are not in the payload).

    Raises:
        VerificationError: a file is missing or differs.
    """
    present = set(uri.relative_files(target))
    missing = [f.relative for f in payload.files if f.relative not in present]
    if missing:
        raise VerificationError(f"{target}: {len(missing)} file(s) missing after copy, e.g. {missing[:3]}")
    for f in payload.files:
        data = uri.read_bytes(uri.join(target, *f.relative.split("/")))
        if len(data) != f.size or _sha256(data) != f.sha256:
            raise VerificationError(f"{target}/{f.relative}: {len(data)} bytes sha256 {_sha256(data)[:12]}, "
                                    f"expected {f.size} bytes sha256 {f.sha256[:12]}")
    return len(payload.files), payload.total_bytes, sorted(present - {f.relative for f in payload.files})


def publish(payload: ServingPayload, target: str) -> PublishResult:
    """Copy ``payload`` to the version directory ``target`` (resuming a partial copy), then verify.

    Raises:
        ServingConflictError: ``target`` holds a file with different content.
        VerificationError: the copy does not read back as the payload.
    """
    present = set(uri.relative_files(target))
    copied = kept = 0
    for f in tqdm(payload.files, desc="push copy", unit="file", leave=False):
        destination = uri.join(target, *f.relative.split("/"))
        if f.relative in present:
            existing = _sha256(uri.read_bytes(destination))
            if existing != f.sha256:
                raise ServingConflictError(
                    f"{destination} already exists with other content (sha256 {existing[:12]}, ours "
                    f"{f.sha256[:12]}); published versions are never overwritten: remove it if it is a leftover")
            kept += 1
            continue
        uri.copy(f.source, destination)
        copied += 1
    files, size, extra = verify(payload, target)
    if extra:
        log.warning("%s holds %d file(s) not in the model: %s", target, len(extra), extra[:5])
    return PublishResult(target, copied, kept, extra, files, size)


def read_latest(serving_uri: str, name: str) -> dict | None:
    """The current ``latest`` pointer, or None."""
    pointer = latest_uri(serving_uri, name)
    return uri.read_json(pointer) if uri.exists(pointer) else None


def write_latest(serving_uri: str, name: str, version: str, target: str, content_sha256: str) -> str:
    """Point ``latest`` at a verified version (one atomic write); returns the pointer's URI."""
    pointer = latest_uri(serving_uri, name)
    uri.write_json(pointer, {"name": name, "version": str(version), "uri": target, "content_sha256": content_sha256})
    return pointer
