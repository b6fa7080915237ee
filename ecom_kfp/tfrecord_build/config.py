"""The typed configuration of the TFRecord build stage, shared by the CLI and the KFP component."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ecom_kfp.contracts.features import JPEG_QUALITY, RESIZE_MODES
from ecom_kfp.resources import available_cpus
from ecom_kfp.settings import require

SPLITS = ("train", "val", "test")
#: Doc2Vec inference epochs per title vector: the cost of a record's vector grows linearly with
#: them. ``benchmarks/bench_tfrecords.py`` measures the quality on myntra-dev titles held out from a
#: 20-epoch model: at 10 epochs the vectors stay nearly as close to a 20-epoch inference (another
#: seed) as two 20-epoch inferences are to each other, and nearest-neighbour category agreement
#: drops about a point, the size of its seed-to-seed spread; at 5 it drops several points.
DOC2VEC_INFER_EPOCHS = 10


class ConfigError(ValueError):
    """A flag has an unusable value; the message names the flag and the value."""


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.7,0.15,0.15"`` -> ``(0.7, 0.15, 0.15)``: train, val and test shares summing to 1.

    Raises:
        ConfigError: not three non-negative numbers summing to 1, or an empty train share.
    """
    try:
        parts = tuple(float(p) for p in str(text).split(","))
    except ValueError as err:
        raise ConfigError(f"--split-fractions {text!r}: expected three numbers like 0.7,0.15,0.15") from err
    if len(parts) != 3 or any(p < 0 or not math.isfinite(p) for p in parts):
        raise ConfigError(f"--split-fractions {text!r}: expected three non-negative numbers (train,val,test)")
    if not math.isclose(sum(parts), 1.0, abs_tol=1e-6):
        raise ConfigError(f"--split-fractions {text!r}: the shares sum to {sum(parts):g}, not 1")
    if parts[0] <= 0:
        raise ConfigError(f"--split-fractions {text!r}: the train share must be positive")
    return parts  # type: ignore[return-value]


@dataclass(frozen=True)
class TFRecordBuildConfig:
    """Everything one TFRecord build (or one fan-out piece of it) needs.

    Attributes:
        products: URI of a dedupe output (directory with ``products.parquet``) or of the Parquet file.
        out: URI of the :class:`~ecom_kfp.contracts.layouts.DatasetLayout` root to write.
        image_size: Side of the stored square images, in pixels.
        resize_mode: ``pad`` (letterbox in white) or ``crop`` (centre crop).
        jpeg_quality: JPEG quality of the stored images (1-95).
        split_fractions: Train, val and test shares.
        stratify: Split each top-level category separately, so each gets exact shares.
        split_salt: Mixed into the group hash; change it to draw a different (still deterministic) split.
        cv_folds: Cross-validation folds; 0 = split by ``split_fractions``. With ``k`` >= 2 the
            duplicate groups are cut into ``k`` equal folds, fold ``cv_fold`` is the test split and
            the rest is train and val at the train:val ratio of ``split_fractions``
            (:mod:`ecom_kfp.tfrecord_build.splits`).
        cv_fold: The test fold (0-based) when ``cv_folds`` is set.
        max_levels: Deepest taxonomy level labelled (levels count from 1).
        min_class_count: Classes with fewer training records fold into ``other``. 1 (keep every class
            seen in training) because a class seen 1-4 times is still a class a shop has: folded, its
            products can only be answered wrongly (``benchmarks/bench_cv.py``, issue 21).
        taxonomy: URI of a Google Product Taxonomy file (``taxonomy-with-ids`` format); needs
            ``taxonomy_mapping``.
        taxonomy_mapping: URI of a TSV mapping source category paths to taxonomy ids or paths.
        spm_vocab_size: Requested SentencePiece vocabulary (lowered, and reported, when the
            training titles cannot support it).
        doc2vec_dim: Doc2Vec vector size (the ``title_vector`` feature).
        doc2vec_epochs: Doc2Vec training epochs.
        doc2vec_infer_epochs: Epochs of the inference that gives each record its title vector
            (:data:`DOC2VEC_INFER_EPOCHS`).
        shard_target_mb: Aimed-for size of one shard file, in MiB.
        workers: Parallel writer processes; 0 = one per CPU.
        shard_index: This piece of a fan-out (0-based).
        num_shards: Pieces in the fan-out; each writes every ``num_shards``-th shard file.
        seed: Seed of the text models and of the record order within shards.
        progress: Show tqdm progress bars.
    """

    products: str
    out: str
    image_size: int = 224
    resize_mode: str = "pad"
    jpeg_quality: int = JPEG_QUALITY
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    stratify: bool = False
    split_salt: str = "ecom-kfp"
    cv_folds: int = 0
    cv_fold: int = 0
    max_levels: int = 4
    min_class_count: int = 1
    taxonomy: str = ""
    taxonomy_mapping: str = ""
    spm_vocab_size: int = 8000
    doc2vec_dim: int = 64
    doc2vec_epochs: int = 20
    doc2vec_infer_epochs: int = DOC2VEC_INFER_EPOCHS
    shard_target_mb: float = 64.0
    workers: int = 0
    shard_index: int = 0
    num_shards: int = 1
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        require([
            (bool(self.products), "--products", self.products, "is required"),
            (bool(self.out), "--out", self.out, "is required"),
            (self.image_size >= 8, "--image-size", self.image_size, "must be at least 8"),
            (self.resize_mode in RESIZE_MODES, "--resize-mode", self.resize_mode, f"must be one of {RESIZE_MODES}"),
            (1 <= self.jpeg_quality <= 95, "--jpeg-quality", self.jpeg_quality, "must be in 1..95"),
            (self.cv_folds == 0 or self.cv_folds >= 2, "--cv-folds", self.cv_folds, "must be 0 (off) or at least 2"),
            (0 <= self.cv_fold < max(self.cv_folds, 1), "--cv-fold", self.cv_fold,
             f"must be in 0..{max(self.cv_folds, 1) - 1}"),
            (self.max_levels >= 1, "--max-levels", self.max_levels, "must be at least 1"),
            (self.min_class_count >= 1, "--min-class-count", self.min_class_count, "must be at least 1"),
            (bool(self.taxonomy) == bool(self.taxonomy_mapping), "--taxonomy/--taxonomy-mapping",
             f"{self.taxonomy!r}/{self.taxonomy_mapping!r}", "must be given together"),
            (self.spm_vocab_size >= 300, "--spm-vocab-size", self.spm_vocab_size,
             "must be at least 300 (256 byte-fallback pieces are always in the vocabulary)"),
            (self.doc2vec_dim >= 1, "--doc2vec-dim", self.doc2vec_dim, "must be at least 1"),
            (self.doc2vec_epochs >= 1, "--doc2vec-epochs", self.doc2vec_epochs, "must be at least 1"),
            (self.doc2vec_infer_epochs >= 1, "--doc2vec-infer-epochs", self.doc2vec_infer_epochs,
             "must be at least 1"),
            (self.shard_target_mb > 0, "--shard-target-mb", self.shard_target_mb, "must be positive"),
            (self.workers >= 0, "--workers", self.workers, "must be 0 (one per CPU) or more"),
            (self.num_shards >= 1, "--num-shards", self.num_shards, "must be at least 1"),
            (0 <= self.shard_index < max(self.num_shards, 1), "--shard-index", self.shard_index,
             f"must be in 0..{self.num_shards - 1}"),
        ], ConfigError)
        parse_fractions(",".join(str(f) for f in self.split_fractions))

    @property
    def worker_count(self) -> int:
        """Writer processes actually used."""
        return self.workers or available_cpus()

    @property
    def shard_target_bytes(self) -> int:
        return max(1, int(self.shard_target_mb * 1024 * 1024))
