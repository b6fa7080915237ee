"""Suspect labels: test products whose recorded class the model's probabilities contradict.

Real catalogs carry wrong labels ("Portia Women Black Sandals" filed under Heels). Confident
learning (``cleanlab.filter.find_label_issues``; Northcutt et al., 2021) estimates, per class, how
confident the model is on products truly of that class, and flags a product when the model puts
more than that confidence on another class. The model never trained on the test split, so its
probabilities there are out-of-sample, as the method requires. Suspects are ranked by the
probability the model gives the recorded label (lowest first). A product recorded as ``other``
because its class is folded or unseen (:mod:`ecom_kfp.evaluate.tail`) is never a suspect: its
label is what the label space makes of a real class, not a catalog mistake.

A suspect is a candidate for a person to check, not a proven error. Accuracy with the suspects set
aside is reported beside the plain figure, never instead of it.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecom_kfp.contracts.labels import OTHER, Vocabulary
from ecom_kfp.evaluate.metrics import LevelPredictions

#: Class id of ``other`` in every vocabulary (its first line).
OTHER_ID = 0
CSV_COLUMNS = ("level", "rank", "product_id", "title", "given", "predicted", "confidence", "given_probability")


@dataclass(frozen=True)
class Suspect:
    """One product whose recorded label looks wrong at one level."""

    level: int
    rank: int
    index: int
    product_id: str
    title: str
    given: str
    predicted: str
    confidence: float
    given_probability: float


@dataclass(frozen=True)
class LevelSuspects:
    """Suspects of one level and accuracy with and without them.

    Attributes:
        level: Taxonomy level.
        count: Suspect labels found.
        accuracy: Plain accuracy over every test example.
        accuracy_without_suspects: Accuracy over the examples that are not suspects (None if none are left).
        examples_without_suspects: How many that is.
    """

    level: int
    count: int
    accuracy: float
    accuracy_without_suspects: float | None
    examples_without_suspects: int


def find_suspects(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices of likely label errors, most likely first (``cleanlab.filter.find_label_issues``).

    Args:
        probabilities: Out-of-sample probabilities ``[n, C]``.
        labels: Recorded class ids ``[n]``.
    """
    from cleanlab.filter import find_label_issues

    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) < 2 or len(np.unique(labels)) < 2:
        return np.zeros(0, dtype=np.int64)
    with warnings.catch_warnings():
        # cleanlab warns for every class with few test examples; rare classes are expected here.
        warnings.filterwarnings("ignore", message=".*too few examples.*")
        # As given, float32 included: a float64 copy would double what cleanlab needs (it peaks
        # near twice its input; benchmarks/bench_evaluate_memory.py).
        ranked = find_label_issues(labels, np.asarray(probabilities),
                                   return_indices_ranked_by="self_confidence", n_jobs=1)
    return np.asarray(ranked, dtype=np.int64)


def level_suspects(predictions: LevelPredictions, probabilities: np.ndarray, vocabulary: Vocabulary,
                   product_ids: Sequence[str], titles: Sequence[str],
                   class_names: Sequence[str]) -> tuple[LevelSuspects, list[Suspect]]:
    """The suspects of one level, ranked, and its accuracy with and without them.

    Args:
        predictions: The level's predictions.
        probabilities: Calibrated out-of-sample probabilities ``[n, C]``.
        vocabulary: The level's classes.
        product_ids: Per example.
        titles: Per example.
        class_names: Each example's real class (:func:`ecom_kfp.evaluate.tail.true_class_names`); one
            recorded as ``other`` but of a real class (folded or unseen) is never a suspect.
    """
    stands_in = np.array([y == OTHER_ID and name != OTHER
                          for y, name in zip(predictions.y_true.tolist(), class_names, strict=True)], dtype=bool)
    ranked = find_suspects(probabilities, predictions.y_true)
    ranked = ranked[~stands_in[ranked]]
    suspects = [Suspect(level=predictions.level, rank=rank + 1, index=int(i), product_id=product_ids[i],
                        title=titles[i], given=vocabulary.classes[predictions.y_true[i]],
                        predicted=vocabulary.classes[predictions.y_pred[i]],
                        confidence=float(probabilities[i, predictions.y_pred[i]]),
                        given_probability=float(probabilities[i, predictions.y_true[i]]))
                for rank, i in enumerate(ranked.tolist())]
    kept = np.ones(len(predictions), dtype=bool)
    kept[ranked] = False
    correct = predictions.correct
    summary = LevelSuspects(predictions.level, len(suspects), float(correct.mean()),
                            float(correct[kept].mean()) if kept.any() else None, int(kept.sum()))
    return summary, suspects


def suspects_csv(suspects: Sequence[Suspect]) -> str:
    """``suspect_labels.csv``: one row per (level, suspect), by level then rank."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in suspects:
        writer.writerow([s.level, s.rank, s.product_id, s.title, s.given, s.predicted, f"{s.confidence:.6f}",
                         f"{s.given_probability:.6f}"])
    return buf.getvalue()
