"""Turn serving-signature outputs into decisions: top classes, predicted path, confidence, accepted.

Shared by batch prediction and the MLflow pyfunc (:mod:`ecom_kfp.push.pyfunc_model`), so both call
the model the same way (:data:`ecom_kfp.contracts.serving.SIGNATURE`, as evaluate does) and apply the
same calibration and thresholds (``thresholds.json``, :class:`~ecom_kfp.contracts.serving.Thresholds`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecom_kfp.contracts import serving
from ecom_kfp.contracts.features import model_title
from ecom_kfp.contracts.labels import OTHER, Vocabulary, path_from_name
from ecom_kfp.contracts.serving import Thresholds

THRESHOLDS_FROM_MODEL = "thresholds.json"
THRESHOLDS_FROM_CURVE = "thresholds.json curve at --target-precision"
THRESHOLDS_FALLBACK = "--fallback-threshold (the model has no thresholds.json)"


@dataclass(frozen=True)
class Policy:
    """The thresholds in force: one per level, and where they come from."""

    thresholds: tuple[float, ...]
    source: str
    target_precision: float | None
    calibration: Thresholds | None

    @classmethod
    def choose(cls, model_thresholds: Thresholds | None, num_levels: int, target_precision: float = 0.0,
               fallback: float = 0.5) -> Policy:
        """The model's thresholds, the curve's at ``target_precision`` (> 0), or ``fallback`` without a file.

        Raises:
            ValueError: ``target_precision`` is asked of a model without ``thresholds.json``, or the
                file covers another number of levels than the model has.
        """
        if model_thresholds is None:
            if target_precision:
                raise ValueError(f"--target-precision={target_precision}: the model has no "
                                 f"{serving.THRESHOLDS_FILE} (evaluate writes it) to choose thresholds from")
            return cls((fallback,) * num_levels, THRESHOLDS_FALLBACK, None, None)
        if len(model_thresholds.levels) != num_levels:
            raise ValueError(f"{serving.THRESHOLDS_FILE} has {len(model_thresholds.levels)} levels, the model "
                             f"{num_levels}")
        wanted = target_precision or None
        values = tuple(model_thresholds.threshold(k, wanted) for k in range(1, num_levels + 1))
        source = THRESHOLDS_FROM_CURVE if wanted and wanted != model_thresholds.target_precision \
            else THRESHOLDS_FROM_MODEL
        return cls(values, source, wanted or model_thresholds.target_precision, model_thresholds)

    def calibrate(self, level: int, probabilities: np.ndarray) -> np.ndarray:
        return self.calibration.calibrate(level, probabilities) if self.calibration else probabilities


@dataclass
class Decisions:
    """Per-product decisions of one batch of ``n`` products over ``L`` levels.

    Attributes:
        probabilities: Calibrated probabilities per level, ``[n, C_k]`` each.
        top_index: Top-k class ids per level, ``[n, k]`` each, most probable first.
        top_probability: Their probabilities, ``[n, k]`` each.
        predicted_level: The deepest level (1-based) whose top class is not ``other``; 0 if none.
        confidence: Probability of the top class at ``predicted_level`` (0 when it is 0).
        threshold: Threshold of ``predicted_level``.
        accepted: ``confidence >= threshold`` (and a real class was predicted).
        accepted_level: The deepest level whose top class is not ``other`` and passes its threshold.
    """

    probabilities: list[np.ndarray]
    top_index: list[np.ndarray]
    top_probability: list[np.ndarray]
    predicted_level: np.ndarray
    confidence: np.ndarray
    threshold: np.ndarray
    accepted: np.ndarray
    accepted_level: np.ndarray


class Scorer:
    """Calls a loaded serving signature and decides, batch by batch."""

    def __init__(self, signature, vocabularies: Sequence[Vocabulary], policy: Policy, top_k: int = 3,
                 title_attributes: Sequence[str] = ()) -> None:
        self.signature = signature
        self.vocabularies = list(vocabularies)
        self.policy = policy
        self.top_k = top_k
        self.title_attributes = tuple(title_attributes)

    def model_title(self, title: str, source: str | Mapping[str, Any] | None) -> str:
        """The signature's ``title`` input for a product: its title, then the catalog attributes
        (``source``: the products table's JSON text, or the row itself) the model was trained to
        read (:func:`ecom_kfp.contracts.features.model_title`)."""
        return model_title(title, source, self.title_attributes)

    @property
    def num_levels(self) -> int:
        return len(self.vocabularies)

    def probabilities(self, images: Sequence[bytes], titles: Sequence[str]) -> list[np.ndarray]:
        """Calibrated per-level probabilities of one batch.

        Raises:
            tensorflow.errors.InvalidArgumentError: an image in the batch cannot be decoded.
            ValueError: the model's outputs do not match its label files.
        """
        import tensorflow as tf

        outputs = self.signature(**{serving.INPUT_IMAGE: tf.constant(list(images), dtype=tf.string),
                                    serving.INPUT_TITLE: tf.constant(list(titles), dtype=tf.string)})
        levels = []
        for k, vocabulary in enumerate(self.vocabularies, start=1):
            p = outputs[serving.output_key(k)].numpy()
            if p.shape[1] != len(vocabulary):
                raise ValueError(f"model output {serving.output_key(k)} has {p.shape[1]} classes, its labels "
                                 f"{len(vocabulary)}")
            levels.append(self.policy.calibrate(k, p))
        return levels

    def probabilities_of_decodable(self, images: Sequence[bytes],
                                   titles: Sequence[str]) -> tuple[list[np.ndarray] | None, list[int]]:
        """Probabilities of the products whose image decodes (None if none does), and the positions
        of those whose image does not. The batch is called once; only when the signature refuses it
        are the products tried one by one, to find the culprits."""
        import tensorflow as tf

        try:
            return self.probabilities(images, titles), []
        except tf.errors.InvalidArgumentError:
            pass
        bad, good = [], []
        for i, (image, title) in enumerate(zip(images, titles)):
            try:
                self.probabilities([image], [title])
                good.append(i)
            except tf.errors.InvalidArgumentError:
                bad.append(i)
        if not good:
            return None, bad
        return self.probabilities([images[i] for i in good], [titles[i] for i in good]), bad

    def decide(self, probabilities: list[np.ndarray]) -> Decisions:
        n = probabilities[0].shape[0]
        k = min(self.top_k, min(p.shape[1] for p in probabilities))
        top_index, top_probability = [], []
        predicted_level = np.zeros(n, dtype=np.int32)
        accepted_level = np.zeros(n, dtype=np.int32)
        for level, p in enumerate(probabilities, start=1):
            order = np.argsort(-p, axis=1, kind="stable")[:, :k]
            top_index.append(order)
            top_probability.append(np.take_along_axis(p, order, axis=1))
            real = order[:, 0] != 0  # class 0 is OTHER (contracts.labels)
            predicted_level[real] = level
            accepted_level[real & (top_probability[-1][:, 0] >= self.policy.thresholds[level - 1])] = level
        rows = np.arange(n)
        stacked = np.stack([t[:, 0] for t in top_probability], axis=1)
        confidence = np.where(predicted_level > 0, stacked[rows, np.maximum(predicted_level - 1, 0)], 0.0)
        thresholds = np.asarray(self.policy.thresholds, dtype=np.float64)[np.maximum(predicted_level - 1, 0)]
        accepted = (predicted_level > 0) & (confidence >= thresholds)
        return Decisions(probabilities, top_index, top_probability, predicted_level,
                         confidence.astype(np.float32), thresholds, accepted, accepted_level)

    def class_names(self, level: int, ids: np.ndarray) -> list[str]:
        classes = self.vocabularies[level - 1].classes
        return [classes[i] for i in ids]

    def predicted_path(self, decisions: Decisions, row: int) -> list[str]:
        """The predicted category path of product ``row`` (empty when every level says ``other``)."""
        level = int(decisions.predicted_level[row])
        if level == 0:
            return []
        name = self.vocabularies[level - 1].classes[decisions.top_index[level - 1][row, 0]]
        return [] if name == OTHER else path_from_name(name)
