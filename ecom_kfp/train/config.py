"""The typed configuration of the training stage, shared by the CLI, the KFP component and workers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ecom_kfp.settings import ConfigError

#: Which branches feed the heads: image only, title only, or both fused.
INPUT_MODES = ("fused", "image", "title")
#: Image backbones known to :mod:`ecom_kfp.train.backbones` (kept here so validating a config
#: does not import TensorFlow).
BACKBONE_NAMES = ("small-cnn", "resnet-small", "mobilenetv3-small", "resnet50", "efficientnetv2-b0",
                  "efficientnet-lite0", "xception")


@dataclass
class TrainConfig:
    """Everything one training run needs.

    Attributes:
        data: URI of a tfrecord-build output (``--data``).
        out: URI the :class:`~ecom_kfp.contracts.layouts.ModelLayout` is written to (``--out``).
        backbone: Image backbone name (``--backbone``), one of :data:`BACKBONE_NAMES`.
        inputs: ``fused``, ``image`` or ``title`` (``--inputs``).
        epochs: Passes over the training split (``--epochs``).
        batch_size: Examples per step on each process (``--batch-size``).
        learning_rate: Base learning rate for one process; scaled by the number of processes
            (``--learning-rate``).
        warmup_epochs: Epochs of linear warm-up from the base to the scaled rate
            (``--warmup-epochs``).
        weight_decay: AdamW decoupled weight decay (``--weight-decay``).
        ema_momentum: Keep an exponential moving average of the weights with this momentum,
            validate on it and export it instead of the last step's weights; 0 turns it off
            (``--ema-momentum``). Checkpoints hold the raw weights, so a resumed run restarts the
            average from them.
        label_smoothing: Share of each label's target spread over all classes (``--label-smoothing``).
        logit_adjustment: Strength ``tau`` of logit adjustment for rare classes: the training loss
            adds ``tau * log(class share in training)`` to the log-probabilities, so the served
            model favours classes with few training examples; 0 = off (``--logit-adjustment``).

    The regularisation defaults (weight decay 0.05, EMA 0.99, label smoothing 0.1) were measured
    together on myntra-dev, where training fits the titles within ~10 epochs: validation level-3
    accuracy rose from ~0.942 to ~0.953 (``benchmarks/bench_train_quality.py``).
        image_size: Model input side; 0 takes the dataset's stored size (``--image-size``).
        level_weights: Loss weight per level, level 1 first; empty = all 1.0 (``--level-weights``).
        business_value_weights: Weight each example's loss by its business value
            (``--business-value-weights``).
        max_title_tokens: Title pieces (and word hashes) kept per product (``--max-title-tokens``).
        title_word_buckets: Hash buckets of the whole-word and word-bigram title embedding; 0 turns
            that input off (``--title-word-buckets``).
        embedding_dim: Piece embedding size when the Doc2Vec model has no piece vectors
            (``--embedding-dim``).
        hidden_units: Width of the fused dense layer (``--hidden-units``).
        dropout: Dropout before the heads (``--dropout``).
        title_dropout: Share of training examples whose title a fused model does not see, so its
            image branch keeps learning after the titles are fitted (``--title-dropout``).
        image_head_weight: In a fused model, loss weight (relative to each level's weight) of
            auxiliary image-only heads, one per level, that keep the image branch learning after
            the titles are fitted; 0 = no such heads (``--image-head-weight``). Training only:
            the served model and ``model.keras`` have the level heads alone.
        augment: Random flips/translations of training images (``--no-augment`` turns off).
        fit_on_val: Train on the train and validation splits together, for the final model once
            the settings were chosen on validation (``--fit-on-val``). Nothing is then held out
            for validation, so no ``val_*`` metrics are computed; the test split stays unseen.
        weights: URI of backbone weights (``.weights.h5``) to start from (``--weights``).
        freeze_backbone_epochs: Epochs the backbone stays frozen when fine-tuning
            (``--freeze-backbone-epochs``).
        num_processes: Horovod processes; > 1 re-launches under horovodrun (``--np``).
        fp16_allreduce: Compress gradients to float16 for the allreduce (``--fp16-allreduce``).
        mlflow_tracking_uri: MLflow tracking URI; empty = ``MLFLOW_TRACKING_URI`` or a sqlite
            store under the output (``--mlflow-tracking-uri``).
        experiment_name: MLflow experiment (``--experiment-name``).
        seed: Seed of initialisation, shuffling and augmentation (``--seed``).
        resume: Continue from the last checkpoint under ``out`` when there is one (``--no-resume``).
    """

    data: str
    out: str
    backbone: str = "efficientnetv2-b0"
    inputs: str = "fused"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    ema_momentum: float = 0.99
    label_smoothing: float = 0.1
    logit_adjustment: float = 0.0
    image_size: int = 0
    level_weights: list[float] = field(default_factory=list)
    business_value_weights: bool = False
    max_title_tokens: int = 32
    title_word_buckets: int = 0
    embedding_dim: int = 64
    hidden_units: int = 256
    dropout: float = 0.2
    title_dropout: float = 0.0
    image_head_weight: float = 0.0
    augment: bool = True
    fit_on_val: bool = False
    weights: str = ""
    freeze_backbone_epochs: int = 0
    num_processes: int = 1
    fp16_allreduce: bool = False
    mlflow_tracking_uri: str = ""
    experiment_name: str = "ecom-kfp"
    seed: int = 0
    resume: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Fail fast on values no run could succeed with.

        Raises:
            ConfigError: naming the flag and the value.
        """
        if not self.data:
            raise ConfigError("--data is required (a tfrecord-build output URI)")
        if not self.out:
            raise ConfigError("--out is required")
        if self.backbone not in BACKBONE_NAMES:
            raise ConfigError(f"--backbone {self.backbone!r} is unknown; choose from {', '.join(BACKBONE_NAMES)}")
        if self.inputs not in INPUT_MODES:
            raise ConfigError(f"--inputs {self.inputs!r} is unknown; choose from {', '.join(INPUT_MODES)}")
        positive = {"--epochs": self.epochs, "--batch-size": self.batch_size, "--np": self.num_processes,
                    "--learning-rate": self.learning_rate, "--max-title-tokens": self.max_title_tokens,
                    "--embedding-dim": self.embedding_dim, "--hidden-units": self.hidden_units}
        for flag, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{flag} must be > 0, got {value}")
        fractions = (("--dropout", self.dropout, ""), ("--title-dropout", self.title_dropout, ""),
                     ("--ema-momentum", self.ema_momentum, " (0 = off)"),
                     ("--label-smoothing", self.label_smoothing, ""))
        for flag, rate, note in fractions:
            if not 0.0 <= rate < 1.0:
                raise ConfigError(f"{flag} must be in [0, 1){note}, got {rate}")
        if self.logit_adjustment < 0:
            raise ConfigError(f"--logit-adjustment must be >= 0 (0 = off), got {self.logit_adjustment}")
        if self.image_head_weight < 0:
            raise ConfigError(f"--image-head-weight must be >= 0 (0 = off), got {self.image_head_weight}")
        fused_only = (("--title-dropout", self.title_dropout), ("--image-head-weight", self.image_head_weight))
        for flag, value in fused_only:
            if value and self.inputs != "fused":
                raise ConfigError(f"{flag} {value} needs --inputs fused, got {self.inputs}")
        if self.title_word_buckets < 0:
            raise ConfigError(f"--title-word-buckets must be >= 0 (0 = off), got {self.title_word_buckets}")
        if self.image_size < 0:
            raise ConfigError(f"--image-size must be >= 0 (0 = the dataset's size), got {self.image_size}")
        if self.warmup_epochs < 0 or self.weight_decay < 0 or self.freeze_backbone_epochs < 0:
            raise ConfigError("--warmup-epochs, --weight-decay and --freeze-backbone-epochs must be >= 0, got "
                              f"{self.warmup_epochs}, {self.weight_decay}, {self.freeze_backbone_epochs}")
        if any(w < 0 for w in self.level_weights) or (self.level_weights and not any(self.level_weights)):
            raise ConfigError(f"--level-weights must be >= 0 and not all zero, got {self.level_weights}")

    @property
    def fit_splits(self) -> tuple[str, ...]:
        """The dataset splits training reads."""
        return training_splits(self.fit_on_val)

    def to_json(self) -> str:
        """Serialise for the worker processes horovodrun starts."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Inverse of :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def training_splits(fit_on_val: bool) -> tuple[str, ...]:
    """The dataset splits a model is trained on: ``train``, plus ``val`` with ``--fit-on-val``."""
    return ("train", "val") if fit_on_val else ("train",)


def parse_level_weights(text: str) -> list[float]:
    """``"1,1,2"`` -> ``[1.0, 1.0, 2.0]``; empty -> ``[]``.

    Raises:
        ConfigError: naming ``--level-weights``.
    """
    if not text.strip():
        return []
    try:
        return [float(part) for part in text.split(",")]
    except ValueError as err:
        raise ConfigError(f"--level-weights must be comma-separated numbers, got {text!r}") from err
