"""The typed configuration of the TFRecord build stage, shared by the CLI and the KFP component."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ecom_kfp.contracts.features import JPEG_QUALITY, RESIZE_MODES
from ecom_kfp.resources import available_cpus
from ecom_kfp.settings import ConfigError, require, setting

SPLITS = ("train", "val", "test")
#: ``all``: the whole build in one process; ``plan``: the global step; ``write``: one piece of the
#: sharded write step; ``merge``: the gather into one dataset (see :mod:`ecom_kfp.tfrecord_build.stage`).
STEPS = ("all", "plan", "write", "merge")
#: Most training titles the text models train on by default: SentencePiece and Doc2Vec memory and
#: time then stop growing with the catalog.
TEXT_SAMPLE = 200_000
#: Doc2Vec inference epochs per title vector: the cost of a record's vector grows linearly with
#: them. ``benchmarks/bench_tfrecords.py`` measures the quality on myntra-dev titles held out from a
#: 20-epoch model: at 10 epochs the vectors stay nearly as close to a 20-epoch inference (another
#: seed) as two 20-epoch inferences are to each other, and nearest-neighbour category agreement
#: drops about a point, the size of its seed-to-seed spread; at 5 it drops several points.
DOC2VEC_INFER_EPOCHS = 10


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
    """Everything one TFRecord build (or one step of a fanned-out build) needs; each field's help is
    its documentation, shared by ``ecom-kfp tfrecord-build --help`` and the components."""

    products: str = setting("", metavar="URI",
                            help="dedupe output directory or gs:// prefix (holds products.parquet), or the Parquet "
                                 "file; read by the all and plan steps")
    out: str = setting("", metavar="URI",
                       help="output directory or gs:// prefix: the dataset (all, merge), the plan (plan) or one "
                            "piece of shards (write)")
    step: str = setting("all", choices=STEPS,
                        help="all: the whole build here; plan: the global step (splits, labels, text models, shard "
                             "plan); write: piece --shard-index of --num-shards of a plan's shard files; merge: a "
                             "plan and all its pieces into one dataset")
    plan: str = setting("", metavar="URI", help="the plan step's output, read by the write and merge steps")
    pieces: list[str] = setting(factory=list, metavar="URI,...",
                                help="every write step output of --plan, joined by the merge step")
    image_size: int = setting(224, metavar="PX", help="side of the stored square images")
    resize_mode: str = setting("pad", choices=RESIZE_MODES,
                               help="keep the whole product with white borders (pad) or centre-crop")
    jpeg_quality: int = setting(JPEG_QUALITY, metavar="Q", help="JPEG quality of the stored images, 1-95")
    split_fractions: tuple[float, float, float] = setting(
        (0.7, 0.15, 0.15), metavar="TRAIN,VAL,TEST", parse=parse_fractions,
        help="shares of the splits, summing to 1")
    stratify: bool = setting(False, help="split each top-level category on its own at exact shares")
    split_salt: str = setting("ecom-kfp", metavar="TEXT",
                              help="mixed into the group hash; change it for another deterministic split")
    cv_folds: int = setting(
        0, metavar="K",
        help="cross-validation folds (0 = split by --split-fractions): leak groups are cut into K equal folds, "
             "fold --cv-fold is the test split, the rest train and val at the train:val ratio of the fractions")
    cv_fold: int = setting(0, metavar="I", help="the test fold (0-based) with --cv-folds")
    max_levels: int = setting(4, metavar="N", help="deepest taxonomy level to label, from 1")
    min_class_count: int = setting(
        1, metavar="N",
        help="classes with fewer training products fold into 'other'; 1 keeps every class seen in training "
             "(a class seen 1-4 times is still a class a shop has; benchmarks/bench_cv.py)")
    taxonomy: str = setting("", metavar="URI",
                            help="Google Product Taxonomy file (taxonomy-with-ids format); needs --taxonomy-mapping")
    taxonomy_mapping: str = setting("", metavar="URI",
                                    help="TSV of '<source path>\\t<taxonomy id or path>' lines mapping source categories")
    title_attributes: list[str] = setting(
        factory=list, metavar="NAME,...",
        help="catalog (source) columns whose values the model reads after the title, a word each (usage Formal -> "
             "usageformal); recorded in manifest.json, so batch predict and the MLflow model add the same words. "
             "myntra's gender,usage,season,baseColour lift level 3 (benchmarks/README.md); names match case- and "
             "punctuation-insensitively")
    spm_vocab_size: int = setting(8000, metavar="N",
                                  help="SentencePiece vocabulary; lowered (and reported) when the titles are too few")
    doc2vec_dim: int = setting(64, metavar="D", help="Doc2Vec vector size of the title_vector feature")
    doc2vec_epochs: int = setting(20, metavar="N", help="Doc2Vec training epochs")
    doc2vec_infer_epochs: int = setting(
        DOC2VEC_INFER_EPOCHS, metavar="N",
        help="Doc2Vec inference epochs per title vector; benchmarks/bench_tfrecords.py measures vector quality "
             "against it")
    text_sample: int = setting(
        TEXT_SAMPLE, metavar="N",
        help="most training titles SentencePiece and Doc2Vec train on: a larger train split is sampled by product-id "
             "hash (the count used is reported in manifest.json); 0 = all")
    shard_target_mb: float = setting(64.0, metavar="MB", help="aimed-for size of one shard file in MiB")
    workers: int = setting(0, metavar="N", help="shard writer processes; 0 = one per CPU")
    shard_index: int = setting(0, metavar="I", help="write step: this piece of the fan-out, from 0")
    num_shards: int = setting(1, metavar="N",
                              help="write step: pieces in the fan-out; piece I writes every N-th shard file of the plan")
    seed: int = setting(0, help="seed of the text models, the text sample and the record order within shards")
    progress: bool = setting(True, flag="--no-progress", help="show progress bars")

    def __post_init__(self) -> None:
        reads_products, reads_plan = self.step in ("all", "plan"), self.step in ("write", "merge")
        require([
            (self.step in STEPS, "--step", self.step, f"must be one of {STEPS}"),
            (bool(self.products) or not reads_products, "--products", self.products, f"is required by --step {self.step}"),
            (bool(self.out), "--out", self.out, "is required"),
            (bool(self.plan) or not reads_plan, "--plan", self.plan, f"is required by --step {self.step}"),
            (bool(self.pieces) or self.step != "merge", "--pieces", self.pieces, "is required by --step merge"),
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
            (self.text_sample >= 0, "--text-sample", self.text_sample, "must be 0 (all titles) or more"),
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
