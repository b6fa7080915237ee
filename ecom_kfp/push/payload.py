"""The serving payload of a model directory: which files are published, and their content hash.

A model version directory is laid out for TensorFlow Serving (``<name>/<version>/saved_model.pb``):
the SavedModel at its root, and what clients need to read its outputs under ``assets.extra/``
(TF Serving's place for extra files): ``assets.extra/labels/level_<k>.txt``,
``assets.extra/labels/thresholds.json`` (the calibration and per-level thresholds evaluate chose,
:class:`ecom_kfp.contracts.serving.Thresholds`), ``assets.extra/dataset_manifest.json`` and, when
the model has one, ``assets.extra/training.json`` (the splits it was fitted on,
:class:`ecom_kfp.contracts.training.TrainingRecord`). Every file of the model's payload
(:attr:`ModelLayout.PAYLOAD`) is served, so the content digest of what is published is the one
evaluate blessed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.contracts.digests import model_content_sha256
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.contracts.serving import THRESHOLDS_FILE

EXTRA = "assets.extra"


@dataclass(frozen=True)
class PayloadFile:
    """One published file: where it comes from, where it goes (relative), and what it holds.

    Attributes:
        source: Its URI in the model directory.
        relative: Its path in the serving version directory.
        model_relative: Its path in the model directory (as ``digests.json`` names it).
        size: Bytes.
        sha256: Hex SHA-256.
    """

    source: str
    relative: str
    model_relative: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ServingPayload:
    """Every published file of a model, sorted by relative path."""

    files: tuple[PayloadFile, ...]

    @classmethod
    def from_model(cls, model: ModelLayout, thresholds: str = "") -> ServingPayload:
        """Read and hash the serving files of ``model``.

        Args:
            model: The model directory.
            thresholds: URI of the evaluation's ``thresholds.json``, served beside the labels
                (it replaces one the model directory may hold); empty = none.

        Raises:
            FileNotFoundError: the model has no SavedModel.
        """
        mapping = [(model.saved_model, "", "saved_model"), (model.labels, f"{EXTRA}/labels", "labels")]
        entries = []
        for root, prefix, model_prefix in mapping:
            for rel in uri.relative_files(root):
                entries.append((uri.join(root, *rel.split("/")), f"{prefix}/{rel}" if prefix else rel,
                                f"{model_prefix}/{rel}"))
        if thresholds:
            # Served where a model keeps it, beside the labels; the model's digests leave that path out.
            served = f"{EXTRA}/labels/{THRESHOLDS_FILE}"
            entries = [e for e in entries if e[1] != served] + [(thresholds, served, f"labels/{THRESHOLDS_FILE}")]
        for single in (ModelLayout.MANIFEST, ModelLayout.TRAINING):
            if uri.exists(uri.join(model.root, single)):
                entries.append((uri.join(model.root, single), f"{EXTRA}/{single}", single))
        if not any(rel == "saved_model.pb" for _, rel, _ in entries):
            raise FileNotFoundError(f"--model {model.root}: no saved_model/saved_model.pb")
        files = []
        for source, rel, model_rel in sorted(entries, key=lambda e: e[1]):
            data = uri.read_bytes(source)
            files.append(PayloadFile(source, rel, model_rel, len(data), hashlib.sha256(data).hexdigest()))
        return cls(tuple(files))

    @property
    def content_sha256(self) -> str:
        """Hash of every file's path, size and hash: equal payloads, equal hash."""
        lines = "".join(f"{f.relative}\t{f.size}\t{f.sha256}\n" for f in self.files)
        return hashlib.sha256(lines.encode("utf-8")).hexdigest()

    @property
    def model_sha256(self) -> str:
        """The model's content digest (:func:`ecom_kfp.contracts.digests.model_content_sha256`) of these files:
        what evaluate records in ``blessing.json``."""
        return model_content_sha256({f.model_relative: f.sha256 for f in self.files})

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)
