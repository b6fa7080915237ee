"""Temperature scaling and expected calibration error, per taxonomy level.

A softmax model that is right 80% of the time when it says 0.99 is over-confident: its top
probability cannot be used as the chance of being right, so a threshold chosen on it does not give
the precision it promises on new products. Temperature scaling (Guo et al., 2017) fixes most of
that with one number per level: probabilities ``p`` become ``softmax(log(p) / T)``; ``T > 1``
softens them, ``T < 1`` sharpens them, and the arg-max (hence accuracy) never changes. ``T`` is
fitted on the validation split by minimising the negative log-likelihood of the true labels, and
judged on the test split by the expected calibration error. A model trained on the validation split
too (``--fit-on-val``) is right on nearly all of it, which says nothing about new products; its
temperature is fitted on the test split, kept only where cross-fitting shows it helps, and judged
there by cross-fitting (:func:`cross_fitted_scale`: each half scaled by the temperature of the
other)::

    ECE = sum over confidence bins b of  n_b / n * | accuracy_b - mean confidence_b |

with :data:`ECE_BINS` equal-width bins over the top probability. The quality benchmark reuses
these functions on cross-validated predictions.

The arithmetic runs over :func:`row_blocks` of the ``[n, C]`` matrix: every step is row-wise, and
whole-matrix float64 temporaries cost ~57 bytes per example and class, 14 times the float32
softmax the stage keeps (``benchmarks/bench_evaluate_memory.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

#: Probabilities are clipped to this before the log (as :meth:`ecom_kfp.contracts.serving.Thresholds.calibrate`).
PROBABILITY_FLOOR = 1e-12
#: Search range of the temperature: far beyond what real models need, finite so the search ends.
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: Equal-width confidence bins of the expected calibration error (the usual choice in the literature).
ECE_BINS = 15


#: Cells of a block of rows (:func:`row_blocks`): each float64 temporary of a block is 2 MB at most.
BLOCK_CELLS = 1 << 18


def row_blocks(rows: int, classes: int) -> Iterator[slice]:
    """Consecutive slices of ``range(rows)`` of about :data:`BLOCK_CELLS` cells of ``classes`` each."""
    step = max(1, BLOCK_CELLS // max(classes, 1))
    return (slice(start, min(start + step, rows)) for start in range(0, rows, step))


def _blocks_of(probabilities: np.ndarray) -> Iterator[slice]:
    return row_blocks(len(probabilities), probabilities.shape[1])


def _log_block(probabilities: np.ndarray) -> np.ndarray:
    block = np.array(probabilities, dtype=np.float64)  # a copy: clipped and logged in place
    return np.log(np.clip(block, PROBABILITY_FLOOR, 1.0, out=block), out=block)


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """``log(p)`` of a ``[n, C]`` softmax output, clipped at :data:`PROBABILITY_FLOOR` (float64)."""
    probabilities = np.asarray(probabilities)
    out = np.empty(probabilities.shape, dtype=np.float64)
    for rows in _blocks_of(probabilities):
        out[rows] = _log_block(probabilities[rows])
    return out


def _scale_block(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    scaled = _log_block(probabilities)
    scaled /= temperature
    scaled -= logsumexp(scaled, axis=1, keepdims=True)
    return np.exp(scaled, out=scaled)


def temperature_scale(probabilities: np.ndarray, temperature: float, dtype: type = np.float64) -> np.ndarray:
    """``softmax(log(p) / T)`` of a ``[n, C]`` softmax output, computed in float64 and returned as ``dtype``."""
    probabilities = np.asarray(probabilities)
    out = np.empty(probabilities.shape, dtype=dtype)
    for rows in _blocks_of(probabilities):
        out[rows] = _scale_block(probabilities[rows], temperature)
    return out


def _summed_nll(log_p: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Sum of ``-log softmax(log_p / T)[label]`` over the rows of a float64 ``log_p`` block."""
    scaled = log_p / temperature
    return float(np.sum(logsumexp(scaled, axis=1) - scaled[np.arange(len(labels)), labels]))


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean ``-log softmax(log(p) / T)[label]`` over the examples."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return math.nan
    return sum(_summed_nll(_log_block(probabilities[rows]), labels[rows], temperature)
               for rows in _blocks_of(probabilities)) / len(labels)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising :func:`negative_log_likelihood` on ``(probabilities, labels)``.

    1.0 when every arg-max is right: the likelihood then has no minimum (sharper is always better).

    Raises:
        ValueError: no examples.
    """
    return fit_pooled_temperature([(probabilities, labels)])


def fit_pooled_temperature(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """One temperature for several ``(probabilities, labels)`` sets pooled, whose classes may differ
    (cross-validation folds, each with its own vocabulary): the one minimising their examples'
    mean :func:`negative_log_likelihood`.

    1.0 when every arg-max is right: the likelihood then has no minimum (sharper is always better).
    The search runs over ``log T`` (bounded, :data:`TEMPERATURE_BOUNDS`): the likelihood is smooth
    and unimodal in it for a softmax, and a multiplicative step treats 0.5 and 2 alike.

    Raises:
        ValueError: no examples.
    """
    log_ps = [log_probabilities(p) for p, _ in parts]
    labels = [np.asarray(y, dtype=np.int64) for _, y in parts]
    examples = sum(len(y) for y in labels)
    if examples == 0:
        raise ValueError("cannot fit a temperature on zero examples")
    if all((log_p.argmax(axis=1) == y).all() for log_p, y in zip(log_ps, labels, strict=True)):
        # Without a single mistake the likelihood keeps rising as T -> 0: no evidence to calibrate on.
        return 1.0

    def nll(log_t: float) -> float:
        t = math.exp(log_t)
        return sum(_summed_nll(log_p[rows], y[rows], t)
                   for log_p, y in zip(log_ps, labels, strict=True) for rows in _blocks_of(log_p)) / examples

    low, high = (math.log(b) for b in TEMPERATURE_BOUNDS)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    return float(math.exp(result.x))


def fold_temperatures(probabilities: np.ndarray, labels: np.ndarray, folds: int = 2) -> tuple[float, ...]:
    """Per fold (rows ``i % folds``), the temperature fitted on the other folds, for judging
    calibration fitted and judged on one split on examples it was not fitted on.

    Raises:
        ValueError: fewer examples than folds.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) < folds:
        raise ValueError(f"cannot cross-fit a temperature on {len(labels)} examples in {folds} folds")
    fold = np.arange(len(labels)) % folds
    return tuple(fit_temperature(probabilities[fold != f], labels[fold != f]) for f in range(folds))


def cross_fitted_scale(probabilities: np.ndarray, temperatures: Sequence[float]) -> np.ndarray:
    """Each example (row ``i``) temperature-scaled by ``temperatures[i % len(temperatures)]``, the
    :func:`fold_temperatures` of its fold."""
    fold = np.arange(len(probabilities)) % len(temperatures)
    scaled = np.empty(np.shape(probabilities), dtype=np.float64)
    for f, temperature in enumerate(temperatures):
        scaled[fold == f] = temperature_scale(probabilities[fold == f], temperature)
    return scaled


def fit_temperature_cross_checked(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, tuple[float, ...]]:
    """:func:`fit_temperature` on all examples, kept only when it lowers the negative log-likelihood
    of held-out examples (:func:`cross_fitted_scale`); else 1.0: on a small split the fitted
    temperature can be noise that makes new products' confidences worse, not better.

    Returns:
        The temperature, and the :func:`fold_temperatures` it was judged by (empty when not kept).
    """
    folds = fold_temperatures(probabilities, labels)
    held_out = negative_log_likelihood(cross_fitted_scale(probabilities, folds), labels)
    if held_out < negative_log_likelihood(probabilities, labels):
        return fit_temperature(probabilities, labels), folds
    return 1.0, ()


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability diagram."""

    low: float
    high: float
    examples: int
    mean_confidence: float | None
    accuracy: float | None


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[ReliabilityBin]:
    """Examples, mean confidence and accuracy per equal-width bin of ``confidence`` (last bin closed)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        out.append(ReliabilityBin(b / bins, (b + 1) / bins, count,
                                  float(confidence[mask].mean()) if count else None,
                                  float(correct[mask].mean()) if count else None))
    return out


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the module docstring: the example-weighted gap between accuracy and confidence per bin.

    Raises:
        ValueError: no examples.
    """
    if len(confidence) == 0:
        raise ValueError("expected calibration error of zero examples")
    total = len(confidence)
    return float(sum(b.examples / total * abs(b.accuracy - b.mean_confidence)
                     for b in reliability_bins(confidence, correct, bins) if b.examples))


@dataclass(frozen=True)
class LevelCalibration:
    """Temperature of one level and how calibrated the test split is before and after it.

    Attributes:
        level: Taxonomy level (1-based).
        temperature: Fitted on ``fitted_split``; 1.0 when not fitted.
        fitted_on: Examples the temperature was fitted on (0 = not fitted).
        fitted_split: ``val``, or ``test`` for a model trained on val (then judged by cross-fitting).
        ece_before: Test ECE of the model's own probabilities.
        ece_after: Test ECE after temperature scaling.
        nll_before: Test negative log-likelihood of the recorded labels, before.
        nll_after: The same, after.
        reliability_before: Reliability bins of the test split, before.
        reliability_after: The same, after.
    """

    level: int
    temperature: float
    fitted_on: int
    fitted_split: str
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    reliability_before: list[ReliabilityBin]
    reliability_after: list[ReliabilityBin]


def calibrate_level(level: int, temperature: float, fitted_on: int, fitted_split: str,
                    test_probabilities: np.ndarray, test_labels: np.ndarray, correct: np.ndarray,
                    fold_temperatures: Sequence[float] = ()) -> LevelCalibration:
    """Judge ``temperature`` on the test split of one level.

    Args:
        level: Taxonomy level.
        temperature: The fitted temperature.
        fitted_on: Examples it was fitted on.
        fitted_split: The split it was fitted on.
        test_probabilities: The model's test probabilities ``[n, C]``.
        test_labels: Recorded test labels ``[n]``.
        correct: Whether each test prediction counts as right (folded classes count as wrong).
        fold_temperatures: For a temperature fitted on the test split itself and kept
            (:func:`fit_temperature_cross_checked`), the fold temperatures it was judged by: the test
            split is then judged scaled by :func:`cross_fitted_scale` instead of by ``temperature``.
    """
    scaled = (cross_fitted_scale(test_probabilities, fold_temperatures) if fold_temperatures
              else temperature_scale(test_probabilities, temperature))
    before = np.max(test_probabilities, axis=1).astype(np.float64)
    after = scaled.max(axis=1)
    return LevelCalibration(
        level=level, temperature=temperature, fitted_on=fitted_on, fitted_split=fitted_split,
        ece_before=expected_calibration_error(before, correct), ece_after=expected_calibration_error(after, correct),
        nll_before=negative_log_likelihood(test_probabilities, test_labels),
        nll_after=negative_log_likelihood(scaled, test_labels),
        reliability_before=reliability_bins(before, correct), reliability_after=reliability_bins(after, correct))
