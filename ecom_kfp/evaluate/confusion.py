"""Confusion matrices over the most valuable classes, as CSV and for ``Output[ClassificationMetrics]``.

The Kubeflow UI renders a square matrix of named categories; thousands of classes would be
unreadable, so only the top-N classes by business value keep their own row and column, and a last
row/column, :data:`REST`, pools every other class (the matrix still sums to the test set size).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from ecom_kfp import uri
from ecom_kfp.contracts.labels import Vocabulary
from ecom_kfp.evaluate.metrics import LevelPredictions, confusion_matrix, most_valuable_classes

REST = "(all other classes)"
CORNER = "true \\ predicted"


@dataclass(frozen=True)
class ConfusionTable:
    """A labelled confusion matrix: rows true, columns predicted, ``categories`` on both axes."""

    level: int
    categories: list[str]
    matrix: np.ndarray

    @classmethod
    def most_valuable(cls, predictions: LevelPredictions, weights: np.ndarray, vocabulary: Vocabulary,
                      top_n: int) -> ConfusionTable:
        """The matrix over the ``top_n`` classes with the most business value in the test set."""
        classes = most_valuable_classes(predictions.y_true, weights, top_n)
        matrix = confusion_matrix(predictions.y_true, predictions.y_pred, classes)
        return cls(predictions.level, [vocabulary.classes[c] for c in classes] + [REST], matrix)

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([CORNER, *self.categories])
        for name, row in zip(self.categories, self.matrix.tolist(), strict=True):
            writer.writerow([name, *row])
        return buf.getvalue()

    def write(self, target: str) -> None:
        uri.write_text(target, self.to_csv())

    @classmethod
    def read(cls, source: str, level: int) -> ConfusionTable:
        """Inverse of :meth:`write`."""
        rows = list(csv.reader(io.StringIO(uri.read_text(source))))
        categories = rows[0][1:]
        matrix = np.array([[int(v) for v in row[1:]] for row in rows[1:]], dtype=np.int64)
        return cls(level, categories, matrix)


def worst_confusions(predictions: LevelPredictions, vocabulary: Vocabulary, limit: int) -> list[dict]:
    """The ``limit`` most frequent (true, predicted) mistakes, with their share of the true class.

    Examples of folded classes are left out: their recorded class (``other``) is not what they are,
    and the tail slice reports them.
    """
    mistakes = ~predictions.correct & ~predictions.folded
    pairs, counts = np.unique(np.stack([predictions.y_true[mistakes], predictions.y_pred[mistakes]], axis=1),
                              axis=0, return_counts=True)
    support = np.bincount(predictions.y_true, minlength=len(vocabulary))
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], pairs[i][0], pairs[i][1]))[:limit]
    return [{"level": predictions.level, "true_id": int(pairs[i][0]), "predicted_id": int(pairs[i][1]),
             "true": vocabulary.classes[pairs[i][0]], "predicted": vocabulary.classes[pairs[i][1]],
             "count": int(counts[i]), "share_of_true": float(counts[i] / support[pairs[i][0]])} for i in order]

