"""SHA-256 digests of stage outputs: recorded by the producer, verified by each consumer before it loads.

Artifact stores are shared with other teams' pipelines, so a consumer checks that every file it is
about to read is one its producer recorded, with the content it recorded, before anything parses
or executes it (a SavedModel runs its own graph). Where the digests live:

- a dataset (tfrecord-build): ``manifest.json`` key :data:`DIGESTS_KEY`, relative path -> SHA-256
  of every file the stage wrote except ``manifest.json`` and ``report.json``;
- a model (train): ``digests.json`` (:attr:`~ecom_kfp.contracts.layouts.ModelLayout.digests`),
  ``{"files": {relative path: SHA-256}, "content_sha256": ...}`` over ``saved_model/``,
  ``labels/``, ``dataset_manifest.json``, ``training.json`` and ``model.keras``. ``content_sha256``
  (:func:`content_digest` of the files in :attr:`ModelLayout.PAYLOAD`) names what is loaded and
  served: evaluate records it in ``blessing.json`` and push refuses a model whose content differs.

Consumers that load a model check a private local copy of it and load that copy
(:func:`verified_model_copy`, :func:`private_copy`), never the shared files again after checking
them: a file swapped between the check and the load would otherwise run unchecked.

A digest kept next to the files it covers detects a file changed or added after the producer
wrote it; it cannot stop a writer who rewrites the digests too. Digests carried through another
channel (``blessing.json`` into push, ``--embedding-model-sha256`` into dedupe) pin the content
itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.contracts.serving import THRESHOLDS_FILE
from ecom_kfp.scratch import scratch_dir

DIGESTS_KEY = "digests"
#: Key of ``blessing.json`` holding the content digest of the model evaluate scored.
BLESSED_MODEL_SHA256 = "model_sha256"
#: Files never covered by a directory's digests: the document holding them, and the run summary.
UNCOVERED = frozenset({"manifest.json", "report.json", "digests.json"})
#: Evaluate's thresholds, served and registered beside a model's labels: chosen after training, so
#: outside the model's digests (push takes them from the evaluation that blessed the model).
BESIDE_MODEL = frozenset({f"labels/{THRESHOLDS_FILE}"})


class DigestError(ValueError):
    """A file is missing, unrecorded or different from what its producer recorded."""


def file_sha256(file_uri: str) -> str:
    """Hex SHA-256 of one file (streamed for local files)."""
    if uri.is_gcs(file_uri):
        return hashlib.sha256(uri.read_bytes(file_uri)).hexdigest()
    with open(file_uri, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def tree_digests(root: str, parts: Iterable[str] | None = None) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``root`` (or below each of ``parts`` of it).

    Files in :data:`UNCOVERED` at the top of ``root`` are left out.
    """
    found: dict[str, str] = {}
    for part in (None,) if parts is None else parts:
        base = root if part is None else uri.join(root, part)
        rels = [""] if _is_file(base) else uri.relative_files(base) if uri.exists(base) else []
        for rel in rels:
            name = "/".join(p for p in (part, rel) if p)
            if name not in UNCOVERED:
                found[name] = file_sha256(uri.join(root, *name.split("/")))
    return dict(sorted(found.items()))


def _is_file(file_uri: str) -> bool:
    if uri.is_gcs(file_uri):
        return uri.list_files(file_uri, limit=1) == [file_uri]
    return os.path.isfile(file_uri)


def content_digest(digests: Mapping[str, str]) -> str:
    """One SHA-256 over ``path<TAB>sha256`` lines, sorted by path: equal trees, equal digest."""
    lines = "".join(f"{rel}\t{digests[rel]}\n" for rel in sorted(digests))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def verify_tree(root: str, expected: Mapping[str, str] | None, parts: Iterable[str], what: str,
                unrecorded: Iterable[str] = ()) -> dict[str, str]:
    """Check every file below ``parts`` of ``root`` against ``expected`` before anything reads it.

    Args:
        root: The producer's output directory.
        expected: Relative path -> SHA-256 as the producer recorded it (None: none recorded).
        parts: Sub-directories or files of ``root`` the consumer reads.
        what: Names the input in messages, e.g. ``--data gs://b/ds``.
        unrecorded: Relative paths that are not the producer's and are left out (neither checked nor returned).

    Returns:
        The verified digests of the files below ``parts``.

    Raises:
        DigestError: no digests recorded, a recorded file is missing, a file is not recorded
            (added later), or a file's content differs; the message names the file.
    """
    if not isinstance(expected, Mapping):
        raise DigestError(f"{what}: no SHA-256 digests recorded for its files (written by an older ecom-kfp "
                          "or by another tool?); refusing to load unverified artifacts: rebuild it")
    parts = list(parts)
    skipped = set(unrecorded)
    actual = {rel: digest for rel, digest in tree_digests(root, parts).items() if rel not in skipped}
    for rel, digest in actual.items():
        if rel not in expected:
            raise DigestError(f"{what}: {rel} is not among the files its producer recorded (added after it was "
                              "written?); refusing to load it")
        if digest != expected[rel]:
            raise DigestError(f"{what}: {rel} has SHA-256 {digest[:16]}, its producer recorded "
                              f"{expected[rel][:16]}: the file is corrupt or was modified after it was written; "
                              "refusing to load it")
    missing = [rel for rel in expected if _under(rel, parts) and rel not in actual]
    if missing:
        raise DigestError(f"{what}: {missing[0]} is recorded but missing ({len(missing)} file(s) missing); "
                          "refusing to load an incomplete artifact")
    return actual


def _under(rel: str, parts: Iterable[str]) -> bool:
    return any(rel == part or rel.startswith(part + "/") for part in parts)


def write_model_digests(layout: ModelLayout) -> dict:
    """Hash a model's files and write ``digests.json``; returns what was written."""
    written = tree_digests(layout.root, (*ModelLayout.PAYLOAD, ModelLayout.KERAS_MODEL))
    files = {rel: digest for rel, digest in written.items() if rel not in BESIDE_MODEL}
    record = {"files": files, "content_sha256": content_digest(_payload(files))}
    uri.write_json(layout.digests, record)
    return record


def verify_model(layout: ModelLayout, flag: str = "--model", shown: str = "") -> str:
    """Verify the files of a model that are loaded and served; returns its content digest.

    Args:
        layout: The model directory checked.
        flag: The flag that named the model, for messages.
        shown: The model as the user named it, for messages, when ``layout`` is a copy of it.

    Raises:
        DigestError: ``digests.json`` is missing or a payload file differs (message names ``flag``).
    """
    what = f"{flag} {shown or layout.root}"
    if not uri.exists(layout.digests):
        raise DigestError(f"{what}: no digests.json (a model written by an older ecom-kfp or by another tool?); "
                          "refusing to load a SavedModel whose content nobody recorded")
    record = uri.read_json(layout.digests)
    files = record.get("files") if isinstance(record, Mapping) else None
    return content_digest(verify_tree(layout.root, files, ModelLayout.PAYLOAD, what, BESIDE_MODEL))


#: What a consumer of a model reads and checks: what is loaded and served, and ``digests.json``.
MODEL_FILES = (*ModelLayout.PAYLOAD, "digests.json")


def copy_parts(root: str, parts: Iterable[str], target: str) -> None:
    """Copy what is below ``parts`` of ``root`` (files or directories, relative paths kept) into the
    local directory ``target``; missing parts are skipped, for a check to name."""
    for part in parts:
        source, copied = uri.join(root, part), os.path.join(target, *part.split("/"))
        if _is_file(source):
            uri.copy(source, copied)
        elif uri.exists(source):
            uri.copy_tree(source, copied)


@contextlib.contextmanager
def private_copy(root: str, parts: Iterable[str]) -> Iterator[str]:
    """:func:`copy_parts` into a new temporary directory only this process writes; yields its path.

    Check and load the copy, not ``root``: a check of files in a shared place (a bucket, a gcsfuse
    mount, a volume other pods write) says nothing about what a later read of them returns.
    """
    with scratch_dir("verified") as local:
        copy_parts(root, parts, local)
        yield local


@contextlib.contextmanager
def private_copy_of(source: str) -> Iterator[str]:
    """:func:`private_copy` of the one file or directory at ``source``; yields the copy's path.

    Raises:
        FileNotFoundError: nothing at ``source``.
    """
    parent, name = uri.split(source)
    with private_copy(parent, (name,)) as local:
        path = os.path.join(local, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no file or directory at {source}")
        yield path


@contextlib.contextmanager
def private_model_copy(model_root: str) -> Iterator[ModelLayout]:
    """:func:`private_copy` of what a consumer of the model at ``model_root`` reads: what is loaded
    and served, its labels' thresholds and ``digests.json``; not yet verified."""
    with private_copy(model_root, MODEL_FILES) as local:
        yield ModelLayout(local)


@contextlib.contextmanager
def verified_model_copy(model_root: str, flag: str = "--model", *,
                        private: bool = False) -> Iterator[tuple[ModelLayout, str]]:
    """:func:`private_model_copy`, verified as :func:`verify_model` does; yields its layout and
    content digest.

    Args:
        private: ``model_root`` is already a local directory only this process writes (a model it
            downloaded into its own scratch directory): verified where it is, not copied again.

    Raises:
        DigestError: as :func:`verify_model`, naming ``flag`` and ``model_root``.
    """
    with contextlib.nullcontext(ModelLayout(model_root)) if private else private_model_copy(model_root) as layout:
        yield layout, verify_model(layout, flag, shown=model_root)


def model_content_sha256(files: Mapping[str, str]) -> str:
    """Content digest of a model from its files' digests (only :attr:`ModelLayout.PAYLOAD` counts)."""
    return content_digest(_payload(files))


def _payload(files: Mapping[str, str]) -> dict[str, str]:
    return {rel: digest for rel, digest in files.items()
            if _under(rel, ModelLayout.PAYLOAD) and rel not in BESIDE_MODEL}


def verify_pinned(model_uri: str, expected_sha256: str, flag: str) -> None:
    """Check a file (its SHA-256) or directory (its :func:`content_digest`) against a pinned digest.

    Raises:
        DigestError: the digest differs; the message gives the actual one so a user can pin it.
    """
    actual = file_sha256(model_uri) if _is_file(model_uri) else content_digest(tree_digests(model_uri))
    if actual != expected_sha256.lower():
        raise DigestError(f"{flag}: SHA-256 {actual}, expected {expected_sha256}: the model is not the one "
                          "pinned; refusing to load it")
