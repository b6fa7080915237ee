"""The files each stage writes under its output URI (the "Stage output layouts" table of docs/design.md).

Producers and consumers name files only through these classes, so a rename happens in one place.
Every layout is rooted at a URI (local directory or ``gs://`` prefix).
"""

from __future__ import annotations

from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.contracts.serving import THRESHOLDS_FILE

REPORT = "report.json"


@dataclass(frozen=True)
class _Layout:
    root: str

    def _at(self, *parts: str) -> str:
        return uri.join(self.root, *parts)

    @property
    def report(self) -> str:
        """``report.json``: counts, timings and throughput of the stage."""
        return self._at(REPORT)


@dataclass(frozen=True)
class IngestLayout(_Layout):
    """``products.parquet``, ``rejects.parquet``, ``images/<sha[:2]>/<sha>.jpg``, ``report.json``."""

    @property
    def products(self) -> str:
        return self._at("products.parquet")

    @property
    def rejects(self) -> str:
        return self._at("rejects.parquet")

    @property
    def images(self) -> str:
        return self._at("images")

    def image(self, sha256: str, suffix: str = ".jpg") -> str:
        """Content-addressed image location."""
        return self._at("images", sha256[:2], sha256 + suffix)


@dataclass(frozen=True)
class DedupeLayout(_Layout):
    """``products.parquet`` (kept, with ``group_id``, ``group_size``, ``split_group``, ``label_conflict``),
    ``duplicates.parquet``, ``rejects.parquet``, ``samples.html`` (random removals, conflicts), ``report.json``."""

    @property
    def products(self) -> str:
        return self._at("products.parquet")

    @property
    def duplicates(self) -> str:
        return self._at("duplicates.parquet")

    @property
    def rejects(self) -> str:
        return self._at("rejects.parquet")

    @property
    def samples_html(self) -> str:
        return self._at("samples.html")


@dataclass(frozen=True)
class DatasetLayout(_Layout):
    """``train|val|test/part-XXXXX-of-YYYYY.tfrecord.gz``, ``labels/``, ``text/``, ``manifest.json``.

    ``text/`` holds ``spm.model`` and Doc2Vec as data (``piece_vectors.npy`` + ``piece_vectors.json``,
    ``doc2vec_inference.npz`` + ``doc2vec_inference.json``), never a pickle; ``manifest.json`` records
    every file's SHA-256.
    """

    SPLITS = ("train", "val", "test")
    #: What consumers read (everything the manifest's digests cover).
    PARTS = (*SPLITS, "labels", "text")

    def split_dir(self, split: str) -> str:
        if split not in self.SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {self.SPLITS}")
        return self._at(split)

    def shard(self, split: str, index: int, count: int) -> str:
        return uri.join(self.split_dir(split), f"part-{index:05d}-of-{count:05d}.tfrecord.gz")

    @property
    def labels(self) -> str:
        return self._at("labels")

    @property
    def spm_model(self) -> str:
        return self._at("text", "spm.model")

    @property
    def piece_vectors(self) -> str:
        """Doc2Vec's vector of each piece it learnt (float32 ``.npy``, rows in :attr:`piece_vocabulary` order)."""
        return self._at("text", "piece_vectors.npy")

    @property
    def piece_vocabulary(self) -> str:
        """The pieces of :attr:`piece_vectors`' rows (JSON list of strings), and the Doc2Vec settings."""
        return self._at("text", "piece_vectors.json")

    @property
    def doc2vec_arrays(self) -> str:
        """Doc2Vec's inference arrays (``syn1neg``, ``cum_table``) as an ``.npz`` of numeric arrays."""
        return self._at("text", "doc2vec_inference.npz")

    @property
    def doc2vec_settings(self) -> str:
        """The Doc2Vec settings title vector inference reads (JSON)."""
        return self._at("text", "doc2vec_inference.json")

    @property
    def manifest(self) -> str:
        return self._at("manifest.json")

    @property
    def rejects(self) -> str:
        return self._at("rejects.parquet")


@dataclass(frozen=True)
class BuildPlanLayout(_Layout):
    """The TFRecord build's global step: ``plan.json`` (settings every piece writes with, files per
    split, digests of ``labels/`` and ``text/``), ``plan.parquet`` (one row per planned record, in
    shard-file order: see :mod:`ecom_kfp.tfrecord_build.global_step`), ``rejects.parquet``,
    ``report.json``; ``labels/`` and ``text/`` as in :class:`DatasetLayout` (the same root)."""

    @property
    def plan(self) -> str:
        return self._at("plan.json")

    @property
    def records(self) -> str:
        return self._at("plan.parquet")

    @property
    def rejects(self) -> str:
        return self._at("rejects.parquet")


@dataclass(frozen=True)
class BuildPieceLayout(_Layout):
    """One write piece of a fanned-out TFRecord build: its shard files under ``train|val|test/`` as in
    :class:`DatasetLayout`, ``piece.json`` (plan id, piece, each file's counts and SHA-256),
    ``rejects.parquet`` (image failures), ``report.json``."""

    @property
    def piece(self) -> str:
        return self._at("piece.json")

    @property
    def rejects(self) -> str:
        return self._at("rejects.parquet")


@dataclass(frozen=True)
class ModelLayout(_Layout):
    """``saved_model/``, ``model.keras``, ``history.json``, ``labels/``, ``dataset_manifest.json``,
    ``training.json``, ``digests.json``, ``report.json``.

    ``digests.json`` holds the SHA-256 of every file of ``saved_model/``, ``labels/``,
    ``dataset_manifest.json``, ``training.json`` and ``model.keras`` (see :mod:`ecom_kfp.contracts.digests`), written
    by train after them; evaluate, dedupe and push verify it before loading. It is a file of its own
    rather than a key of ``report.json`` so that a model copied without its run summary (the
    registry's ``model/`` artifact) still carries it.
    """

    #: What is loaded and served (relative to the root); its digest is the model's content digest.
    #: ``training.json`` is optional: models written before it existed verify and serve without it.
    MANIFEST, TRAINING = "dataset_manifest.json", "training.json"
    PAYLOAD = ("saved_model", "labels", MANIFEST, TRAINING)
    KERAS_MODEL = "model.keras"

    @property
    def saved_model(self) -> str:
        return self._at("saved_model")

    @property
    def keras_model(self) -> str:
        return self._at(self.KERAS_MODEL)

    @property
    def digests(self) -> str:
        return self._at("digests.json")

    @property
    def history(self) -> str:
        return self._at("history.json")

    @property
    def labels(self) -> str:
        return self._at("labels")

    @property
    def thresholds(self) -> str:
        """``labels/thresholds.json`` (:class:`ecom_kfp.contracts.serving.Thresholds`), written by evaluate."""
        return self._at("labels", THRESHOLDS_FILE)

    @property
    def manifest(self) -> str:
        """Copy of the dataset manifest the model was trained on."""
        return self._at(self.MANIFEST)

    @property
    def training(self) -> str:
        """``training.json`` (:class:`ecom_kfp.contracts.training.TrainingRecord`): the splits the model was fitted on."""
        return self._at(self.TRAINING)


@dataclass(frozen=True)
class EvaluationLayout(_Layout):
    """``metrics.json``, ``confusion_<level>.csv``, ``coverage.csv``, ``report.html``, ``blessing.json``,
    ``thresholds.json``, ``suspect_labels.csv``."""

    @property
    def metrics(self) -> str:
        return self._at("metrics.json")

    def confusion(self, level: int) -> str:
        """Confusion matrix over the top-N valuable classes of ``level`` (1-based)."""
        return self._at(f"confusion_level_{level}.csv")

    @property
    def coverage(self) -> str:
        return self._at("coverage.csv")

    @property
    def html(self) -> str:
        return self._at("report.html")

    @property
    def blessing(self) -> str:
        return self._at("blessing.json")

    @property
    def thresholds(self) -> str:
        """:class:`ecom_kfp.contracts.serving.Thresholds` chosen on the test split; push serves it beside the labels."""
        return self._at(THRESHOLDS_FILE)

    @property
    def suspect_labels(self) -> str:
        """Test products whose recorded label looks wrong (:mod:`ecom_kfp.evaluate.suspects`)."""
        return self._at("suspect_labels.csv")


@dataclass(frozen=True)
class PushLayout(_Layout):
    """``report.json`` (registered model name, version, alias, serving URI)."""


@dataclass(frozen=True)
class PredictionLayout(_Layout):
    """``predictions.parquet``, ``rejects.parquet``, ``predictions.html`` with the products it shows in
    ``samples.json``, ``report.json``."""

    @property
    def predictions(self) -> str:
        return self._at("predictions.parquet")

    @property
    def rejects(self) -> str:
        return self._at("rejects.parquet")

    @property
    def html(self) -> str:
        return self._at("predictions.html")

    @property
    def samples(self) -> str:
        return self._at("samples.json")
