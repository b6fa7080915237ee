"""Classification metrics of one taxonomy level, computed from compact per-example predictions.

A level's softmax is reduced to a few numbers per example (:class:`LevelPredictions`); every
metric below is a pure function of those arrays. A product whose class was seen in training but
folded into ``other`` (too rare to get its own class) is recorded as ``other``; no answer of the
model names its class, so it counts as an error, also when the model answers ``other``.

Business-value-weighted score (Criteo-style, reported next to plain accuracy)::

    weighted_score = sum_i w_i * [pred_i == true_i] / sum_i w_i

where ``w_i`` is the business value of example ``i``'s true category
(:mod:`ecom_kfp.evaluate.business_value`). Grouping the sum by class ``c`` gives the equivalent
per-class form ``sum_c W_c * accuracy_c / sum_c W_c`` with ``W_c = sum of w_i over the test
examples of c``: each class's accuracy counts with the business value it carries in the test set,
so getting shoes right matters more than tractor tyres. With equal weights it is plain accuracy.

Precision/coverage (iQON-style): a prediction is *accepted* when its confidence (the top
probability after temperature scaling, :mod:`ecom_kfp.evaluate.calibration`) is at least a
threshold; coverage is the share of accepted examples and precision the accuracy among them.
Raising the threshold trades coverage for precision, which lets an imperfect model label the
products it is sure about and leave the rest to people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score

from ecom_kfp.evaluate.calibration import row_blocks, temperature_scale

#: Probabilities are clipped to this before the log in :func:`log_loss` (as scikit-learn does).
LOG_LOSS_EPSILON = 1e-15
#: Thresholds of the coverage curve: 0.00, 0.01, ..., 1.00.
COVERAGE_THRESHOLDS = tuple(round(i / 100, 2) for i in range(101))


@dataclass(frozen=True)
class LevelPredictions:
    """What the metrics need per example at one level.

    Attributes:
        level: Taxonomy level (1-based).
        y_true: Recorded class ids, int ``[n]`` (``other`` for a class folded into it).
        y_pred: Arg-max class ids, int ``[n]``.
        confidence: Top probability after temperature scaling (:mod:`~ecom_kfp.evaluate.calibration`),
            float ``[n]``: what thresholds are compared with.
        raw_confidence: Top probability as the model outputs it, float ``[n]``.
        p_true: Probability the model gives the recorded class, float ``[n]``.
        top_k_hit: Whether the true class is among the ``k`` most probable, bool ``[n]``.
        k: The ``k`` of ``top_k_hit`` (capped at the number of classes).
        folded: Bool ``[n]``: the true class was seen in training but folded into ``other``, so no
            answer of the model names it and every prediction counts as wrong.
    """

    level: int
    y_true: np.ndarray
    y_pred: np.ndarray
    confidence: np.ndarray
    raw_confidence: np.ndarray
    p_true: np.ndarray
    top_k_hit: np.ndarray
    k: int
    folded: np.ndarray

    @classmethod
    def from_probabilities(cls, level: int, probabilities: np.ndarray, y_true: np.ndarray, k: int,
                           temperature: float = 1.0, folded: np.ndarray | None = None) -> LevelPredictions:
        """Reduce a softmax ``[n, C]`` and its recorded ids ``[n]`` to per-example numbers.

        Args:
            level: Taxonomy level.
            probabilities: The model's output.
            y_true: Recorded class ids.
            k: ``k`` of top-k accuracy.
            temperature: Calibration temperature of the level (1.0 = none).
            folded: Examples whose true class is folded into ``other`` (default: none).
        """
        probabilities = np.asarray(probabilities)
        y_true = np.asarray(y_true, dtype=np.int64)
        folded = np.zeros(len(y_true), dtype=bool) if folded is None else np.asarray(folded, dtype=bool)
        k = max(1, min(k, probabilities.shape[1]))
        p_true = probabilities[np.arange(len(y_true)), y_true].astype(np.float64)
        raw = probabilities.max(axis=1).astype(np.float64)
        calibrated = raw if temperature == 1.0 else np.empty_like(raw)
        # The true class is in the top k iff fewer than k classes are strictly more probable;
        # counting avoids an argsort over thousands of classes. One pass over row blocks keeps the
        # comparison's boolean matrix and the scaled probabilities small.
        above = np.empty(len(y_true), dtype=np.int64)
        for rows in row_blocks(len(y_true), probabilities.shape[1]):
            above[rows] = (probabilities[rows] > p_true[rows, None]).sum(axis=1)
            if temperature != 1.0:
                calibrated[rows] = temperature_scale(probabilities[rows], temperature).max(axis=1)
        top_k_hit = (above < k) & ~folded
        return cls(level, y_true, probabilities.argmax(axis=1), calibrated, raw, p_true, top_k_hit, k, folded)

    @property
    def correct(self) -> np.ndarray:
        """Bool ``[n]``: the arg-max is the true class (never for a folded class)."""
        return (self.y_pred == self.y_true) & ~self.folded

    def __len__(self) -> int:
        return len(self.y_true)


def f1_macro_weighted(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """Macro F1 (classes equal) and support-weighted F1 over classes seen as truth or prediction.

    A class never predicted has precision 0 (``zero_division=0``), so it pulls the macro mean down.
    """
    labels = np.union1d(y_true, y_pred)
    macro = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    weighted = f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
    return float(macro), float(weighted)


def log_loss(p_true: np.ndarray) -> float:
    """Mean negative log probability of the true class (natural log)."""
    return float(-np.mean(np.log(np.clip(p_true, LOG_LOSS_EPSILON, 1.0))))


def weighted_score(correct: np.ndarray, weights: np.ndarray) -> float:
    """Business-value-weighted accuracy ``sum(w * correct) / sum(w)`` (see the module docstring).

    Raises:
        ValueError: all weights are zero, so the score is undefined.
    """
    weights = np.asarray(weights, dtype=np.float64)
    total = weights.sum()
    if total <= 0:
        raise ValueError("business-value weights sum to zero; no example carries any value")
    return float((weights * np.asarray(correct, dtype=np.float64)).sum() / total)


def class_values(y_true: np.ndarray, weights: np.ndarray) -> dict[int, float]:
    """Total business value per true class in the test set (``W_c`` of the module docstring)."""
    totals: dict[int, float] = {}
    for cls, weight in zip(np.asarray(y_true).tolist(), np.asarray(weights, dtype=np.float64).tolist(), strict=True):
        totals[cls] = totals.get(cls, 0.0) + weight
    return totals


def most_valuable_classes(y_true: np.ndarray, weights: np.ndarray, n: int) -> list[int]:
    """The ``n`` true classes carrying the most business value, most valuable first (ties: lower id)."""
    totals = class_values(y_true, weights)
    return sorted(totals, key=lambda c: (-totals[c], c))[:n]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Counts ``[len(classes) + 1]^2``: rows true, columns predicted; the last row/column pools every
    class not in ``classes``, so the matrix still sums to the number of examples."""
    index = {c: i for i, c in enumerate(classes)}
    rest = len(classes)
    matrix = np.zeros((rest + 1, rest + 1), dtype=np.int64)
    rows = np.array([index.get(c, rest) for c in np.asarray(y_true).tolist()], dtype=np.int64)
    cols = np.array([index.get(c, rest) for c in np.asarray(y_pred).tolist()], dtype=np.int64)
    np.add.at(matrix, (rows, cols), 1)
    return matrix


@dataclass(frozen=True)
class CoveragePoint:
    """One threshold of the precision/coverage curve."""

    threshold: float
    accepted: int
    coverage: float
    precision: float | None  # None when nothing is accepted


def coverage_curve(correct: np.ndarray, confidence: np.ndarray,
                   thresholds: Sequence[float] = COVERAGE_THRESHOLDS) -> list[CoveragePoint]:
    """Precision and coverage of the predictions whose confidence is ``>= threshold``."""
    correct = np.asarray(correct, dtype=bool)
    confidence = np.asarray(confidence, dtype=np.float64)
    points = []
    for threshold in thresholds:
        accepted = confidence >= threshold
        count = int(accepted.sum())
        precision = float(correct[accepted].mean()) if count else None
        points.append(CoveragePoint(float(threshold), count, count / len(correct), precision))
    return points


def threshold_for_precision(correct: np.ndarray, confidence: np.ndarray, target: float) -> CoveragePoint | None:
    """The lowest confidence threshold whose accepted predictions reach ``target`` precision.

    Exact, not on the curve's grid: every distinct confidence is a candidate (all examples of a
    tied confidence are accepted together), and the one accepting the most examples wins. ``None``
    when no threshold reaches ``target``.
    """
    correct = np.asarray(correct, dtype=bool)
    confidence = np.asarray(confidence, dtype=np.float64)
    if not len(correct):
        return None
    order = np.argsort(-confidence, kind="stable")
    ranked = confidence[order]
    accepted = np.arange(1, len(ranked) + 1)
    precision = np.cumsum(correct[order]) / accepted
    end_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    candidates = np.flatnonzero(end_of_tie & (precision >= target))
    if not len(candidates):
        return None
    i = int(candidates[-1])
    return CoveragePoint(float(ranked[i]), i + 1, (i + 1) / len(ranked), float(precision[i]))


@dataclass(frozen=True)
class LevelMetrics:
    """Headline metrics of one level (also the numbers push records in the registry).

    Thresholds apply to the calibrated confidence (:attr:`LevelPredictions.confidence`); an example
    of a folded class counts as wrong everywhere (accuracy, F1, top-k, precision).
    """

    level: int
    examples: int
    accuracy: float
    weighted_score: float
    top_k_accuracy: float
    k: int
    macro_f1: float
    weighted_f1: float
    log_loss: float
    confidence_threshold: float
    precision_at_threshold: float | None
    coverage_at_threshold: float
    target_precision: float
    threshold_for_target_precision: float | None
    coverage_at_target_precision: float
    precision_at_target_threshold: float | None = None


#: The :class:`LevelMetrics` fields the blessing gate and the registry compare across models.
HEADLINE = ("accuracy", "weighted_score", "top_k_accuracy", "macro_f1", "weighted_f1", "log_loss")


def level_metrics(predictions: LevelPredictions, weights: np.ndarray, confidence_threshold: float,
                  target_precision: float) -> tuple[LevelMetrics, list[CoveragePoint]]:
    """Every metric of one level, plus its coverage curve."""
    correct = predictions.correct
    # Folded examples form one extra true class the model never predicts, so F1 counts them wrong.
    macro, weighted = f1_macro_weighted(np.where(predictions.folded, -1, predictions.y_true), predictions.y_pred)
    curve = coverage_curve(correct, predictions.confidence)
    # Exactly at the configured threshold, which need not lie on the curve's grid.
    at_threshold = coverage_curve(correct, predictions.confidence, [confidence_threshold])[0]
    at_target = threshold_for_precision(correct, predictions.confidence, target_precision)
    metrics = LevelMetrics(
        level=predictions.level,
        examples=len(predictions),
        accuracy=float(np.mean(correct)),
        weighted_score=weighted_score(correct, weights),
        top_k_accuracy=float(np.mean(predictions.top_k_hit)),
        k=predictions.k,
        macro_f1=macro,
        weighted_f1=weighted,
        log_loss=log_loss(predictions.p_true),
        confidence_threshold=confidence_threshold,
        precision_at_threshold=at_threshold.precision,
        coverage_at_threshold=at_threshold.coverage,
        target_precision=target_precision,
        threshold_for_target_precision=at_target.threshold if at_target else None,
        coverage_at_target_precision=at_target.coverage if at_target else 0.0,
        precision_at_target_threshold=at_target.precision if at_target else None,
    )
    return metrics, curve
