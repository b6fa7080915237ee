"""Publish a model to a versioned serving location, verify it, and only then move ``latest``.

Layout under the serving root (local directory or ``gs://`` prefix)::

    <serving_uri>/<name>/<version>/...           the payload (see :mod:`ecom_kfp.push.payload`)
    <serving_uri>/<name>/latest                  JSON pointer: version, uri, content_sha256
    <serving_uri>/<name>/.pending/<version>.json claim of a copy in progress: version, content_sha256
    <serving_uri>/<name>/.versions/<version>.json  record of a verified copy: version, content_sha256,
                                                 files (relative path -> SHA-256)

Every file is written under a temporary name and renamed (a ``gs://`` upload appears only once
complete), from bytes whose SHA-256 was checked against the payload at the moment of copying.
A push that starts on an empty version directory first writes a claim; a re-run of the same
content under that claim resumes the copy, replacing any partial file and temporary leftover,
and the claim is removed once the copy is verified and serves. A version directory that holds
other content without our claim (e.g. a registry that was reset and hands out version numbers
the serving bucket already used) stops the push with :class:`ServingConflictError`: published
versions are never overwritten. ``latest`` is written once, after every file has been read back
and matched by size and SHA-256, so a half-copied version is never ``latest``.

The record of a verified copy lives outside the version directory (TF Serving ignores dot
directories), and a consumer that loads a version (predict) checks every file against it first
(:func:`verify_version`): a file changed or added in the bucket after the push is refused.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass

from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts.digests import DigestError, verify_tree
from ecom_kfp.push.payload import ServingPayload
from ecom_kfp.settings import ConfigError

log = logging.getLogger(__name__)
LATEST = "latest"
PENDING = ".pending"
RECORDS = ".versions"
#: The temporary name :func:`ecom_kfp.uri.write_bytes` writes a local file under before renaming it;
#: a push killed mid-write leaves one behind.
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")


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
    replaced: int
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


def claim_uri(serving_uri: str, name: str, version: str) -> str:
    """``<serving_uri>/<name>/.pending/<version>.json``."""
    return uri.join(serving_uri, name, PENDING, f"{version}.json")


def record_uri(version_root: str) -> str:
    """``<serving_uri>/<name>/.versions/<version>.json`` of the version directory ``version_root``."""
    parent, version = uri.split(version_root)
    return uri.join(parent, RECORDS, f"{version}.json")


def verify_version(version_root: str, flag: str = "--model", shown: str = "") -> None:
    """Check every file of a pushed version against the record push wrote when it verified the copy.

    Args:
        version_root: The version directory checked, with its record where :func:`record_uri` says.
        flag: The flag that named the version, for messages.
        shown: The version as the user named it, for messages, when ``version_root`` is a copy of it.

    Raises:
        DigestError: no record, or a file missing, added or changed since the push (named in the message).
    """
    what = f"{flag} {shown or version_root}"
    record = record_uri(version_root)
    if not uri.exists(record):
        raise DigestError(f"{what}: no record of its files at {record_uri(shown or version_root)} (pushed by an "
                          "older ecom-kfp, or not by push?); refusing to load a SavedModel whose content nobody "
                          "recorded: push it again")
    files = uri.read_json(record).get("files")
    # Every top-level entry present or recorded, so a file added anywhere in the version is caught.
    parts = {rel.split("/", 1)[0] for rel in [*uri.relative_files(version_root), *(files or {})]}
    verify_tree(version_root, files, sorted(parts), what)


def check_writable(serving_uri: str, name: str) -> None:
    """Write and delete a probe under ``<serving_uri>/<name>/``, so a push fails before it registers anything.

    Raises:
        ConfigError: the serving location cannot be written (the message names ``--serving-uri``).
    """
    probe = uri.join(serving_uri, name, PENDING, f"probe-{uuid.uuid4().hex}")
    try:
        uri.write_bytes(probe, b"")
        uri.delete(probe)
    except Exception as err:  # OSError locally, google.api_core errors on gs://: both mean "cannot publish"
        raise ConfigError(f"--serving-uri={serving_uri!r}: cannot write {probe} ({type(err).__name__}: {err}); "
                          "nothing was registered") from err


def _claimed(claim: str, payload: ServingPayload) -> bool:
    return uri.exists(claim) and uri.read_json(claim).get("content_sha256") == payload.content_sha256


def publish(payload: ServingPayload, serving_uri: str, name: str, version: str) -> PublishResult:
    """Copy ``payload`` to ``<serving_uri>/<name>/<version>/`` (resuming a copy of ours), then verify.

    Raises:
        ServingConflictError: the version directory holds a file with other content and no claim of ours.
        VerificationError: a source file changed since it was hashed, or the copy does not read back as
            the payload.
    """
    target = version_uri(serving_uri, name, version)
    claim = claim_uri(serving_uri, name, version)
    present = set(uri.relative_files(target))
    ours = _claimed(claim, payload)
    if not present and not ours:
        uri.write_json(claim, {"version": str(version), "content_sha256": payload.content_sha256})
        ours = True
    copied = kept = replaced = 0
    for f in tqdm(payload.files, desc="push copy", unit="file", leave=False):
        destination = uri.join(target, *f.relative.split("/"))
        if f.relative in present:
            existing = _sha256(uri.read_bytes(destination))
            if existing == f.sha256:
                kept += 1
                continue
            if not ours:
                raise ServingConflictError(
                    f"{destination} already exists with other content (sha256 {existing[:12]}, ours "
                    f"{f.sha256[:12]}); published versions are never overwritten: remove it if it is a leftover")
            replaced += 1  # a partial file of our own interrupted copy
        data = uri.read_bytes(f.source)
        if _sha256(data) != f.sha256:
            raise VerificationError(f"{f.source} changed while being pushed (sha256 {_sha256(data)[:12]}, hashed "
                                    f"as {f.sha256[:12]}); nothing of it was published")
        uri.write_bytes(destination, data)
        copied += 1
    if ours:
        for rel in present - {f.relative for f in payload.files}:
            if _TEMPORARY.fullmatch(rel.rsplit("/", 1)[-1]):
                uri.delete(uri.join(target, *rel.split("/")))
    files, size, extra = verify(payload, target)
    if extra:
        log.warning("%s holds %d file(s) not in the model: %s", target, len(extra), extra[:5])
    uri.write_json(record_uri(target), {"version": str(version), "content_sha256": payload.content_sha256,
                                        "files": {f.relative: f.sha256 for f in payload.files}})
    return PublishResult(target, copied, kept, replaced, extra, files, size)


def release_claim(serving_uri: str, name: str, version: str) -> None:
    """Drop the claim of a version whose copy is verified and serves."""
    uri.delete(claim_uri(serving_uri, name, version))


def read_latest(serving_uri: str, name: str) -> dict | None:
    """The current ``latest`` pointer, or None."""
    pointer = latest_uri(serving_uri, name)
    return uri.read_json(pointer) if uri.exists(pointer) else None


def write_latest(serving_uri: str, name: str, version: str, target: str, content_sha256: str) -> str:
    """Point ``latest`` at a verified version (one atomic write); returns the pointer's URI."""
    pointer = latest_uri(serving_uri, name)
    uri.write_json(pointer, {"name": name, "version": str(version), "uri": target, "content_sha256": content_sha256})
    return pointer
