"""The serving signature of a trained model (``saved_model/``), shared by train, evaluate and push.

``saved_model/`` exports one signature, :data:`SIGNATURE`, that takes a batch of raw inputs exactly
as a shop has them and returns one probability vector per taxonomy level:

- inputs: ``image_bytes`` (``tf.string [None]``: JPEG/PNG bytes of any size; resized in-graph with
  :func:`ecom_kfp.contracts.features.decode_and_resize`) and ``title`` (``tf.string [None]``;
  tokenised in-graph with the dataset's SentencePiece model through tensorflow-text; for a dataset
  built with ``title_attributes``, the title followed by the catalog attribute words of
  :func:`ecom_kfp.contracts.features.model_title`, as the records hold it).
- outputs: ``level_<k>`` (``tf.float32 [None, C_k]``, softmax over ``labels/level_<k>.txt``) for
  k = 1..num_levels.

Beside the label files, ``labels/thresholds.json`` (:class:`Thresholds`, written by evaluate) holds
the per-level confidence thresholds and calibration that every consumer (batch predict, the MLflow
pyfunc, an online server) applies to those outputs.

Inside it sits the Keras model (``model.keras``), whose own inputs and outputs are named here too,
so the input pipeline, the tokenizer, the model and the export agree: :data:`MODEL_IMAGE_INPUT`
(``[None, S, S, 3]``, 0..255, uint8 or float), :data:`MODEL_TITLE_INPUT` and
:data:`MODEL_TITLE_WORDS_INPUT` (int32 ``[None, max_title_tokens]``, 0 = padding),
:data:`MODEL_TITLE_CHARS_INPUT` (int32 ``[None, MAX_CHAR_GRAMS]`` hashed character n-grams, 0 = padding;
:mod:`ecom_kfp.train.text`), and one output
per level named :func:`model_output` (float32 probabilities). A fused model also has heads that read
one branch alone, named :func:`model_branch_head` (:func:`model_image_head`, :func:`model_title_head`):
auxiliary image heads in training, or, in a late-fusion model, the two branches' own classifiers
whose logits the served heads add. They are never outputs of the signature.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

SIGNATURE = "serving_default"
INPUT_IMAGE = "image_bytes"
INPUT_TITLE = "title"


def output_key(level: int) -> str:
    """Output name of the probabilities at ``level`` (1-based)."""
    return f"level_{level}"


#: Keras model input names (the model's, not the serving signature's).
MODEL_IMAGE_INPUT = "image"
MODEL_TITLE_INPUT = "title_tokens"
MODEL_TITLE_WORDS_INPUT = "title_words"
MODEL_TITLE_CHARS_INPUT = "title_chars"


def model_output(level: int) -> str:
    """Name of the Keras model's head (and the label key in training batches) at ``level`` (1-based)."""
    return f"level_{level}"


#: The branches of a fused model that may have heads of their own.
BRANCHES = ("image", "title")


def model_branch_head(branch: str, level: int) -> str:
    """Name of a fused model's head at ``level`` that reads only ``branch`` (one of :data:`BRANCHES`;
    never served: the signature returns :func:`model_output`)."""
    if branch not in BRANCHES:
        raise ValueError(f"branch must be one of {', '.join(BRANCHES)}, got {branch!r}")
    return f"{branch}_{model_output(level)}"


def model_image_head(level: int) -> str:
    """Name of a fused model's image-only head at ``level`` (auxiliary, or a late-fusion branch's)."""
    return model_branch_head("image", level)


def model_title_head(level: int) -> str:
    """Name of a late-fusion model's title-only head at ``level``."""
    return model_branch_head("title", level)


def load_signature(saved_model_dir: str):
    """Load a local ``saved_model/`` and return its :data:`SIGNATURE` callable.

    tensorflow-text must be imported before loading: it registers the SentencePiece ops the
    in-graph tokenizer uses, and without it loading fails with "Op type not registered".
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers SentencepieceOp)

    loaded = tf.saved_model.load(saved_model_dir)
    signature = loaded.signatures[SIGNATURE]
    signature._ecom_kfp_owner = loaded  # keep the loaded object (and its variables) alive
    return signature


#: Name of the thresholds file. It lives next to the label files (``labels/thresholds.json`` of a
#: model directory, :attr:`ecom_kfp.contracts.layouts.ModelLayout.thresholds`), so it travels with
#: them into the serving payload (``assets.extra/labels/thresholds.json``) and the registry.
THRESHOLDS_FILE = "thresholds.json"


@dataclass(frozen=True)
class LevelThreshold:
    """The confidence threshold of one taxonomy level and the precision curve it was chosen on.

    Attributes:
        level: Taxonomy level (1-based).
        threshold: Accept a prediction at this level when its (calibrated) top probability is at
            least this value.
        precision: Precision of the accepted predictions at ``threshold`` on the split it was chosen on.
        coverage: Share of that split's products accepted at ``threshold``.
        curve_threshold: Candidate thresholds, ascending (empty when no curve was recorded).
        curve_precision: Precision of the products with confidence >= ``curve_threshold[i]``.
        curve_coverage: Share of products with confidence >= ``curve_threshold[i]``.
    """

    level: int
    threshold: float
    precision: float
    coverage: float
    curve_threshold: tuple[float, ...] = ()
    curve_precision: tuple[float, ...] = ()
    curve_coverage: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        lengths = {len(self.curve_threshold), len(self.curve_precision), len(self.curve_coverage)}
        if len(lengths) != 1:
            raise ValueError(f"level {self.level}: curve_threshold, curve_precision and curve_coverage differ "
                             "in length")
        if any(b < a for a, b in zip(self.curve_threshold, self.curve_threshold[1:])):
            raise ValueError(f"level {self.level}: curve_threshold must be ascending")

    def for_precision(self, target_precision: float) -> float:
        """The lowest curve threshold whose precision reaches ``target_precision`` (most coverage).

        Returns ``math.inf`` (accept nothing) when no point of the curve reaches it.

        Raises:
            ValueError: the level has no curve, so no other target than the chosen one can be met.
        """
        if not self.curve_threshold:
            raise ValueError(f"level {self.level}: {THRESHOLDS_FILE} has no precision curve to choose "
                             f"a threshold for precision {target_precision}")
        for threshold, precision in zip(self.curve_threshold, self.curve_precision):
            if precision >= target_precision:
                return threshold
        return math.inf


@dataclass(frozen=True)
class Thresholds:
    """``thresholds.json``: per-level confidence thresholds for a target precision, written by evaluate.

    JSON form::

        {"target_precision": 0.95,
         "temperature": [1.3, 1.1, 1.6],              # per level, level 1 first; [] = uncalibrated
         "levels": [{"level": 1, "threshold": 0.83, "precision": 0.951, "coverage": 0.97,
                     "curve": {"threshold": [...], "precision": [...], "coverage": [...]}}, ...]}

    ``temperature[k-1]`` calibrates level ``k``: probabilities ``p`` from the signature become
    ``softmax(log(p) / T)`` (:meth:`calibrate`) before any threshold is compared, so thresholds and
    curves are on calibrated probabilities. ``curve`` is optional; with it, a caller may ask for
    another target precision (:meth:`threshold`).
    """

    target_precision: float
    levels: tuple[LevelThreshold, ...]
    temperature: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if [t.level for t in self.levels] != list(range(1, len(self.levels) + 1)):
            raise ValueError(f"{THRESHOLDS_FILE}: levels must be 1..n in order")
        if self.temperature and len(self.temperature) != len(self.levels):
            raise ValueError(f"{THRESHOLDS_FILE}: {len(self.temperature)} temperatures for {len(self.levels)} levels")
        if any(t <= 0 for t in self.temperature):
            raise ValueError(f"{THRESHOLDS_FILE}: temperatures must be > 0")

    def threshold(self, level: int, target_precision: float | None = None) -> float:
        """Threshold of ``level`` (1-based): the stored one, or the curve's for ``target_precision``."""
        chosen = self.levels[level - 1]
        if target_precision is None or target_precision == self.target_precision:
            return chosen.threshold
        return chosen.for_precision(target_precision)

    def calibrate(self, level: int, probabilities):
        """Apply the level's temperature to a ``[n, C]`` probability array (unchanged without one)."""
        import numpy as np

        if not self.temperature or self.temperature[level - 1] == 1.0:
            return probabilities
        logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)) / self.temperature[level - 1]
        logits -= logits.max(axis=1, keepdims=True)
        scaled = np.exp(logits)
        return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)

    def to_dict(self) -> dict:
        levels = []
        for t in self.levels:
            entry = {"level": t.level, "threshold": t.threshold, "precision": t.precision, "coverage": t.coverage}
            if t.curve_threshold:
                entry["curve"] = {"threshold": list(t.curve_threshold), "precision": list(t.curve_precision),
                                  "coverage": list(t.curve_coverage)}
            levels.append(entry)
        return {"target_precision": self.target_precision, "temperature": list(self.temperature), "levels": levels}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> Thresholds:
        levels = []
        for entry in data["levels"]:
            curve = entry.get("curve") or {}
            levels.append(LevelThreshold(
                level=int(entry["level"]), threshold=float(entry["threshold"]), precision=float(entry["precision"]),
                coverage=float(entry["coverage"]),
                curve_threshold=tuple(map(float, curve.get("threshold", ()))),
                curve_precision=tuple(map(float, curve.get("precision", ()))),
                curve_coverage=tuple(map(float, curve.get("coverage", ())))))
        return cls(float(data["target_precision"]), tuple(levels), tuple(map(float, data.get("temperature") or ())))

    @classmethod
    def from_json(cls, text: str) -> Thresholds:
        return cls.from_dict(json.loads(text))

    def save(self, labels_dir: str) -> str:
        """Write ``thresholds.json`` under ``labels_dir`` (a model's ``labels/``); returns its URI."""
        from ecom_kfp import uri

        target = uri.join(labels_dir, THRESHOLDS_FILE)
        uri.write_text(target, self.to_json())
        return target

    @classmethod
    def load(cls, labels_dir: str) -> Thresholds | None:
        """Read ``thresholds.json`` from ``labels_dir``, or None when the model has none."""
        from ecom_kfp import uri

        return cls.load_file(uri.join(labels_dir, THRESHOLDS_FILE))

    @classmethod
    def load_file(cls, source: str) -> Thresholds | None:
        """Read a thresholds file, or None when there is none at ``source``."""
        from ecom_kfp import uri

        return cls.from_json(uri.read_text(source)) if source and uri.exists(source) else None
