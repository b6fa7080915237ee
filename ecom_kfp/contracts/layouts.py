"""The files each stage writes under its output URI (the "Stage output layouts" table of DESIGN.md).

Producers and consumers name files only through these classes, so a rename happens in one place.
Every layout is rooted at a URI (local directory or ``gs://`` prefix).
"""

from __future__ import annotations

from dataclasses import dataclass

from ecom_kfp import uri

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
    """``products.parquet`` (kept), ``duplicates.parquet``, ``rejects.parquet``, ``samples.html``, ``report.json``."""

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
    """``train|val|test/part-XXXXX-of-YYYYY.tfrecord.gz``, ``labels/``, ``text/``, ``manifest.json``."""

    SPLITS = ("train", "val", "test")

    def split_dir(self, split: str) -> str:
        if split not in self.SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {self.SPLITS}")
        return self._at(split)

    def shard(self, split: str, index: int, count: int) -> str:
        return uri.join(self.split_dir(split), f"part-{index:05d}-of-{count:05d}.tfrecord.gz")

    def shard_pattern(self, split: str) -> str:
        return uri.join(self.split_dir(split), "part-*.tfrecord.gz")

    @property
    def labels(self) -> str:
        return self._at("labels")

    @property
    def spm_model(self) -> str:
        return self._at("text", "spm.model")

    @property
    def doc2vec_model(self) -> str:
        return self._at("text", "doc2vec.model")

    @property
    def manifest(self) -> str:
        return self._at("manifest.json")

    @property
    def rejects(self) -> str:
        return self._at("rejects.parquet")


@dataclass(frozen=True)
class ModelLayout(_Layout):
    """``saved_model/``, ``model.keras``, ``history.json``, ``labels/``, ``text/``, ``report.json``."""

    @property
    def saved_model(self) -> str:
        return self._at("saved_model")

    @property
    def keras_model(self) -> str:
        return self._at("model.keras")

    @property
    def history(self) -> str:
        return self._at("history.json")

    @property
    def labels(self) -> str:
        return self._at("labels")

    @property
    def manifest(self) -> str:
        """Copy of the dataset manifest the model was trained on."""
        return self._at("dataset_manifest.json")


@dataclass(frozen=True)
class EvaluationLayout(_Layout):
    """``metrics.json``, ``confusion_<level>.csv``, ``coverage.csv``, ``report.html``, ``blessing.json``."""

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


@dataclass(frozen=True)
class PushLayout(_Layout):
    """``report.json`` (registered model name, version, alias, serving URI)."""


@dataclass(frozen=True)
class BuildPlanLayout(_Layout):
    """The global step of a fanned-out TFRecord build (``tfrecord-build --step plan``).

    ``labels/`` and ``text/`` as in :class:`DatasetLayout`; ``plan.json`` (feature spec, shard files
    per split, label folding, text and split facts); ``records/<split>-<index>.parquet`` (the
    records of each shard file, in their written order); ``rejects.parquet`` (products rejected
    before writing); ``report.json``.
    """

    @property
    def plan(self) -> str:
        return self._at("plan.json")

    def records(self, split: str, index: int) -> str:
        return self._at("records", f"{split}-{index:05d}.parquet")

    @property
    def rejects(self) -> str:
        return self._at("rejects.parquet")


@dataclass(frozen=True)
class BuildPieceLayout(DatasetLayout):
    """One piece of the sharded write step (``tfrecord-build --step write``): its shard files under
    ``<split>/`` with their global names, ``piece.json`` (counts of what it wrote), ``rejects.parquet``
    (products whose image failed) and ``report.json``."""

    @property
    def piece(self) -> str:
        return self._at("piece.json")
