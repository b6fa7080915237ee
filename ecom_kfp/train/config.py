"""The typed configuration of the training stage, shared by the CLI, the KFP component and workers.

Every setting is declared once here (:func:`ecom_kfp.settings.setting`): ``ecom-kfp train``'s flags
and ``train_op``'s parameter descriptions are derived from it. Hardware-dependent settings left
unset come from the run's preset (:mod:`ecom_kfp.train.presets`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from ecom_kfp.settings import ConfigError, require, require_given, setting
from ecom_kfp.train.presets import DEFAULT_PRESET, PRESET_NAMES, PRESETS, UNSET

__all__ = ["BACKBONE_NAMES", "ConfigError", "FUSIONS", "INPUT_MODES", "LAUNCHERS", "PRECISIONS", "TrainConfig",
           "parse_level_weights", "training_splits"]

#: Which branches feed the heads: image only, title only, or both fused.
INPUT_MODES = ("fused", "image", "title")
#: How a fused model combines its branches: one classifier on both branches' features (joint), or
#: a classifier per branch whose logits are added (late; :func:`ecom_kfp.train.model.build_classifier`).
FUSIONS = ("joint", "late")
#: Image backbones known to :mod:`ecom_kfp.train.backbones` (kept here so validating a config
#: does not import TensorFlow).
BACKBONE_NAMES = ("small-cnn", "resnet-small", "mobilenetv3-small", "resnet50", "efficientnetv2-b0",
                  "efficientnet-lite0", "xception")
#: ``auto`` picks by hardware (:func:`ecom_kfp.train.precision.resolve_policy`).
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
#: Where the ranks run: this machine (in this process, or horovodrun when --np > 1), always
#: under horovodrun, or as an MPI Operator MPIJob.
LAUNCHERS = ("local", "horovodrun", "mpijob")
#: Measured best on myntra-dev (benchmarks/bench_train_quality.py): the deepest level weighs 3.
DEFAULT_LEVEL_WEIGHTS = (1.0, 1.0, 3.0)
#: ``--weights`` value that loads the ImageNet checkpoint a pinned package ships
#: (:mod:`ecom_kfp.train.pretrained`), so a pipeline run needs no weights file in a bucket.
IMAGENET_WEIGHTS = "imagenet"
#: The backbone :data:`IMAGENET_WEIGHTS` fits.
IMAGENET_BACKBONE = "efficientnet-lite0"


@dataclass
class TrainConfig:
    """What ``ecom-kfp train`` and ``train_op`` run; each field's help is its documentation.

    The regularisation defaults (dropout 0.3, weight decay 0.05, EMA 0.99, label smoothing 0.1,
    level weights 1,1,3, word buckets 32,768) are the measured best of
    ``benchmarks/bench_train_quality.py``, the 65,536 character n-gram buckets that of
    ``benchmarks/bench_cv.py``; see :mod:`ecom_kfp.train.presets` for the rest.
    """

    data: str = setting(metavar="URI", help="URI of a tfrecord-build output (local path or gs://)")
    out: str = setting(metavar="URI", help="URI the model layout is written to (saved_model/, model.keras, "
                                           "history.json, report.json)")
    preset: str = setting(DEFAULT_PRESET, choices=PRESET_NAMES,
                          help="named settings for the hardware: cpu-small (small-cnn at 64 px, the measured best on "
                               "2 CPU cores) or gpu (efficientnetv2-b0 at 224 px, batch and learning rate per GPU); "
                               "it fills backbone, image size, epochs, batch size and learning rate left unset")
    backbone: str = setting(UNSET.backbone, choices=BACKBONE_NAMES, help="image backbone; empty = the preset's")
    inputs: str = setting("fused", choices=INPUT_MODES,
                          help="feed the heads from image and title (fused), image only or title only")
    epochs: int = setting(UNSET.epochs, metavar="N", help="passes over the training split; 0 = the preset's")
    batch_size: int = setting(UNSET.batch_size, metavar="N",
                              help="examples per step on each process (each GPU); 0 = the preset's")
    learning_rate: float = setting(UNSET.learning_rate, metavar="LR",
                                   help="base learning rate of one process, scaled by --np after warm-up; "
                                        "0 = the preset's")
    warmup_epochs: float = setting(1.0, metavar="EPOCHS", help="epochs of linear warm-up to the scaled rate")
    weight_decay: float = setting(0.05, help="AdamW decoupled weight decay")
    ema_momentum: float = setting(
        0.99, help="momentum of an exponential moving average of the weights, validated on and exported instead of "
                   "the last step's weights; 0 = off (checkpoints hold the raw weights)")
    label_smoothing: float = setting(0.1, help="share of each label's target spread over all classes")
    logit_adjustment: float = setting(
        0.0, metavar="TAU",
        help="logit adjustment for rare classes: the training loss adds TAU * log(class share in training) to the "
             "log-probabilities, so the served model favours classes with few examples; 0 = off (benchmarks/bench_cv.py "
             "measured 1.0 to collapse level 1 on myntra-dev)")
    image_size: int = setting(UNSET.image_size, metavar="PX",
                              help="model input side in pixels (records are resized when it differs from the stored "
                                   "size); 0 = the preset's")
    level_weights: list[float] = setting(
        factory=lambda: list(DEFAULT_LEVEL_WEIGHTS), metavar="W,...",
        help="loss weight per taxonomy level, level 1 first, aligned to the deepest level: with fewer values than "
             "the dataset has levels the upper levels weigh 1, with more the extra upper values are dropped")
    business_value_weights: bool = setting(False, help="weight each example's loss by its business value")
    max_title_tokens: int = setting(32, metavar="N", help="title pieces (and word hashes) kept per product")
    title_word_buckets: int = setting(32768, metavar="N",
                                      help="hash buckets of the whole-word and word-bigram title embedding; 0 = off")
    title_char_buckets: int = setting(65536, metavar="N",
                                      help="hash buckets of the title's character 2-4-gram embedding (n-grams within "
                                           "words, like sklearn's char_wb); 0 = off, which halves a title-only model's "
                                           "training time")
    embedding_dim: int = setting(64, metavar="N", help="piece embedding size when Doc2Vec has no piece vectors")
    hidden_units: int = setting(256, metavar="N", help="width of the fused dense layer")
    dropout: float = setting(0.3, help="dropout before the heads")
    title_dropout: float = setting(0.0, help="fused models only: share of training examples whose title the model "
                                             "does not see, so the image branch keeps learning")
    image_head_weight: float = setting(
        0.0, help="fused models only: loss weight of auxiliary image-only heads (training only, not served); 0 = off")
    fusion: str = setting(
        "joint", choices=FUSIONS,
        help="fused models only: joint = one set of heads on the concatenated image and title features; late = "
             "the title and the image each get heads of their own, trained by their own losses, and the served "
             "level-k probabilities are softmax(title logits + W * image logits) (see --late-fusion-weight). On "
             "myntra-dev late fusion with frozen ImageNet Lite0 features beat joint fusion (benchmarks/README.md)")
    late_fusion_weight: float = setting(
        0.4, metavar="W", help="--fusion late: weight W of the image logits against the title's (0 = serve the title "
                               "heads alone); 0.4 was the best of 0-1 in 5-fold cross-validation on myntra-dev")
    augment: bool = setting(True, help="random flips and shifts of training images, run in the train step on the "
                                       "accelerator; ignored with --frozen-backbone, which trains on features "
                                       "computed once")
    fit_on_val: bool = setting(False, help="train on the train and validation splits together, for the final model "
                                           "once the settings were chosen on validation (no validation metrics; evaluate then "
                                           "calibrates on the test split)")
    weights: str = setting("", metavar="URI",
                           help=f"backbone weights to start from: a .weights.h5 URI, or '{IMAGENET_WEIGHTS}' for "
                                f"{IMAGENET_BACKBONE}'s ImageNet weights, read from the checkpoint a pinned package "
                                "ships (in the container image too: no file to upload); empty = random initialisation")
    freeze_backbone_epochs: int = setting(0, metavar="N", help="epochs the backbone stays frozen when fine-tuning")
    frozen_backbone: bool = setting(
        False, help="keep the --weights backbone frozen for the whole run and compute its image features once per "
                    "product before the first epoch (one backbone pass over the training splits, plus val, instead "
                    "of one per epoch; the features are held in memory, ~5 KB per product for 1,280 features), then "
                    "train the rest of the model on them; the exported model still contains the backbone and takes "
                    "images. Needs --inputs image or fused and --weights; images are not augmented in this mode")
    frozen_backbone_until: str = setting(
        "", metavar="LAYER",
        help="--frozen-backbone: freeze the backbone only up to its layer LAYER, whose output (a feature map, kept in "
             "float16: 31 KB per product for efficientnet-lite0's block7_add at 224 px) is computed once per product, "
             "and fine-tune the backbone's layers after it in every epoch; '' = the whole backbone stays frozen. A "
             "wrong name lists the backbone's block outputs. On myntra-dev, efficientnet-lite0 cut at "
             "block7_add lifted image-only level 3 from 0.807 (all frozen) to 0.841 in 5-fold cross-validation "
             "(benchmarks/README.md)")
    precision: str = setting("auto", choices=PRECISIONS,
                             help="compute precision: auto = mixed_bfloat16 on GPUs of compute capability >= 8.0, "
                                  "mixed_float16 with loss scaling on older GPUs, float32 on CPU")
    jit_compile: bool = setting(False, help="compile the forward and backward pass with XLA (the gradient "
                                            "allreduce and the update stay outside it)")
    num_processes: int = setting(1, flag="--np", metavar="N", help="Horovod processes, one per GPU")
    launcher: str = setting("local", choices=LAUNCHERS,
                            help="local: this machine (in this process, or horovodrun when --np > 1); horovodrun: "
                                 "always under horovodrun; mpijob: a kubeflow.org/v2beta1 MPIJob with one worker pod "
                                 "per process, on gs:// URIs")
    fp16_allreduce: bool = setting(False, help="compress gradients to float16 for the allreduce")
    mlflow_tracking_uri: str = setting("", metavar="URI",
                                       help="MLflow tracking URI; empty = $MLFLOW_TRACKING_URI, else a sqlite store "
                                            "under the output")
    experiment_name: str = setting("ecom-kfp", help="MLflow experiment")
    seed: int = setting(0, help="seed of initialisation, shuffling and augmentation")
    deterministic: bool = setting(False, help="read training examples in a fixed order (slower input): with the "
                                              "same --seed, data and machine, a run gives the same model whatever "
                                              "the machine's load")
    resume: bool = setting(True, help="continue from the last checkpoint under --out when there is one")

    def __post_init__(self) -> None:
        self.validate()
        preset = PRESETS[self.preset]
        for name, unset in asdict(UNSET).items():
            if getattr(self, name) == unset:
                setattr(self, name, getattr(preset, name))
        # Only now is the backbone known when the preset chose it.
        require([(self.weights != IMAGENET_WEIGHTS or self.backbone == IMAGENET_BACKBONE, "--weights", self.weights,
                  f"fits --backbone {IMAGENET_BACKBONE} only, but the backbone is {self.backbone}")])

    def validate(self) -> None:
        """Fail fast on values no run could succeed with (unset preset settings are allowed).

        Raises:
            ConfigError: naming the flag and the value.
        """
        require_given((("--data", self.data), ("--out", self.out)))
        fractions = ("must be in [0, 1)", "must be in [0, 1) (0 = off)")
        require([
            (self.preset in PRESETS, "--preset", self.preset, f"choose from {', '.join(PRESET_NAMES)}"),
            (self.backbone in (UNSET.backbone, *BACKBONE_NAMES), "--backbone", self.backbone,
             f"choose from {', '.join(BACKBONE_NAMES)}"),
            (self.inputs in INPUT_MODES, "--inputs", self.inputs, f"choose from {', '.join(INPUT_MODES)}"),
            (self.fusion in FUSIONS, "--fusion", self.fusion, f"choose from {', '.join(FUSIONS)}"),
            (self.precision in PRECISIONS, "--precision", self.precision, f"choose from {', '.join(PRECISIONS)}"),
            (self.launcher in LAUNCHERS, "--launcher", self.launcher, f"choose from {', '.join(LAUNCHERS)}"),
            (self.epochs >= 0, "--epochs", self.epochs, "must be > 0 (0 = the preset's)"),
            (self.batch_size >= 0, "--batch-size", self.batch_size, "must be > 0 (0 = the preset's)"),
            (self.learning_rate >= 0, "--learning-rate", self.learning_rate, "must be > 0 (0 = the preset's)"),
            (self.image_size >= 0, "--image-size", self.image_size, "must be > 0 (0 = the preset's)"),
            (self.num_processes > 0, "--np", self.num_processes, "must be > 0"),
            (self.max_title_tokens > 0, "--max-title-tokens", self.max_title_tokens, "must be > 0"),
            (self.embedding_dim > 0, "--embedding-dim", self.embedding_dim, "must be > 0"),
            (self.hidden_units > 0, "--hidden-units", self.hidden_units, "must be > 0"),
            (0.0 <= self.dropout < 1.0, "--dropout", self.dropout, fractions[0]),
            (0.0 <= self.title_dropout < 1.0, "--title-dropout", self.title_dropout, fractions[0]),
            (0.0 <= self.ema_momentum < 1.0, "--ema-momentum", self.ema_momentum, fractions[1]),
            (0.0 <= self.label_smoothing < 1.0, "--label-smoothing", self.label_smoothing, fractions[0]),
            (self.logit_adjustment >= 0.0, "--logit-adjustment", self.logit_adjustment, "must be >= 0 (0 = off)"),
            (self.image_head_weight >= 0, "--image-head-weight", self.image_head_weight, "must be >= 0 (0 = off)"),
            (not self.title_dropout or self.inputs == "fused", "--title-dropout", self.title_dropout,
             f"needs --inputs fused, got {self.inputs}"),
            (not self.image_head_weight or self.inputs == "fused", "--image-head-weight", self.image_head_weight,
             f"needs --inputs fused, got {self.inputs}"),
            (self.fusion == "joint" or self.inputs == "fused", "--fusion", self.fusion,
             f"needs --inputs fused, got {self.inputs}"),
            (self.late_fusion_weight >= 0, "--late-fusion-weight", self.late_fusion_weight, "must be >= 0"),
            # Late fusion's image heads are trained as a branch of their own, at the level weights.
            (self.fusion == "joint" or not self.image_head_weight, "--image-head-weight", self.image_head_weight,
             "must be 0 with --fusion late (its image heads are always trained)"),
            # Its title heads never see the image, so hiding the title would only train them on nothing.
            (self.fusion == "joint" or not self.title_dropout, "--title-dropout", self.title_dropout,
             "must be 0 with --fusion late (the title heads read only the title)"),
            (self.title_word_buckets >= 0, "--title-word-buckets", self.title_word_buckets, "must be >= 0 (0 = off)"),
            (self.title_char_buckets >= 0, "--title-char-buckets", self.title_char_buckets, "must be >= 0 (0 = off)"),
            (self.warmup_epochs >= 0, "--warmup-epochs", self.warmup_epochs, "must be >= 0"),
            (self.weight_decay >= 0, "--weight-decay", self.weight_decay, "must be >= 0"),
            (self.freeze_backbone_epochs >= 0, "--freeze-backbone-epochs", self.freeze_backbone_epochs,
             "must be >= 0"),
            (all(w >= 0 for w in self.level_weights) and any(self.level_weights), "--level-weights",
             self.level_weights, "must be >= 0, not all zero"),
            (not self.weights or self.inputs != "title", "--weights", self.weights,
             "needs an image backbone, but --inputs is title"),
            (not self.frozen_backbone or self.inputs != "title", "--frozen-backbone", self.frozen_backbone,
             "needs an image backbone (--inputs image or fused), but --inputs is title"),
            # A frozen randomly initialised backbone would only add noise features to train on.
            (not self.frozen_backbone or bool(self.weights), "--frozen-backbone", self.frozen_backbone,
             "needs --weights: the backbone stays as loaded for the whole run"),
            (not self.frozen_backbone or not self.freeze_backbone_epochs, "--freeze-backbone-epochs",
             self.freeze_backbone_epochs, "must be 0 with --frozen-backbone (the backbone is frozen for every epoch)"),
            (not self.frozen_backbone_until or self.frozen_backbone, "--frozen-backbone-until",
             self.frozen_backbone_until, "needs --frozen-backbone"),
        ])

    @property
    def branch_heads(self) -> tuple[str, ...]:
        """The branches whose heads of their own are trained (:func:`~ecom_kfp.contracts.serving.model_branch_head`)."""
        if self.fusion == "late":  # fused models only (validate)
            return ("image", "title")
        return ("image",) if self.image_head_weight > 0 else ()

    def level_weights_for(self, num_levels: int) -> list[float]:
        """Loss weight of each of ``num_levels`` levels, level 1 first (see ``--level-weights``)."""
        deepest = list(self.level_weights)[-num_levels:]
        return [1.0] * (num_levels - len(deepest)) + deepest

    @property
    def fit_splits(self) -> tuple[str, ...]:
        """The dataset splits training reads."""
        return training_splits(self.fit_on_val)

    def to_json(self) -> str:
        """Serialise for the worker processes horovodrun or an MPIJob starts."""
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
    """``"1,1,2"`` -> ``[1.0, 1.0, 2.0]``; empty -> ``[]`` (for scripts that take the weights as text).

    Raises:
        ConfigError: naming ``--level-weights``.
    """
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise ConfigError(f"--level-weights must be comma-separated numbers, got {text!r}") from err
