"""Classes the model could not learn: folded into ``other``, and the tail of few training examples.

The build folds a class with fewer than ``min_class_count`` training products into ``other`` (or,
under a keep-every-class policy, keeps it with its handful of examples). Either way a shop has that
class, so evaluation needs the product's real class, not its recorded label: the records carry the
category path the labels were computed from (:data:`ecom_kfp.contracts.features.CATEGORY_PATH`),
and the dataset manifest the training count of every class, kept or folded. At each level:

- an example is **folded** when its recorded label is ``other`` but its path names a class that
  training has seen: no answer can be right (:attr:`~ecom_kfp.evaluate.metrics.LevelPredictions.folded`);
- an example is **unseen** when its class never occurs in training: ``other`` is the right answer;
- the **tail** is the examples whose class has at least one and fewer than ``tail_train_examples``
  training examples, folded or not; the rest with a seen class is the **head**.

Records written before the path feature existed have an empty path: their examples are judged by
the recorded label alone (nothing is folded) and the report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecom_kfp.contracts.labels import OTHER, SEPARATOR, Vocabulary, class_name
from ecom_kfp.evaluate.metrics import LevelPredictions


def train_class_counts(manifest: dict, num_levels: int) -> list[dict[str, int]] | None:
    """Training examples per class name and level (kept and folded classes), from ``manifest.json``.

    None when the manifest has no training counts (a dataset written without them).
    """
    train = manifest.get("counts", {}).get("train")
    if not isinstance(train, dict):
        return None
    folding = manifest.get("folding", {}).get("levels", {})
    out = []
    for level in range(1, num_levels + 1):
        counts = {name: int(n) for name, n in train.get(f"level_{level}", {}).items() if name != OTHER}
        counts.update({name: int(n) for name, n in folding.get(f"level_{level}", {}).get("folded_classes", {}).items()})
        out.append(counts)
    return out


def true_class_names(category_paths: Sequence[str], labels: np.ndarray,
                     vocabularies: Sequence[Vocabulary]) -> list[list[str]]:
    """Per level, each example's real class name: from its path when recorded, else from its label.

    A path shorter than the level has no class there, which the label space calls ``other``.
    """
    out = []
    for k, vocabulary in enumerate(vocabularies):
        names = []
        for path, label in zip(category_paths, labels[:, k].tolist(), strict=True):
            if path:
                names.append(class_name(path.split(SEPARATOR), vocabulary.level) or OTHER)
            else:
                names.append(vocabulary.classes[label])
        out.append(names)
    return out


def folded_mask(names: Sequence[str], vocabulary: Vocabulary, train_counts: dict[str, int] | None) -> np.ndarray:
    """Bool ``[n]``: the class is not in ``vocabulary`` but training has seen it (so it was folded)."""
    if train_counts is None:
        return np.zeros(len(names), dtype=bool)
    return np.array([name != OTHER and not vocabulary.contains(name) and train_counts.get(name, 0) > 0
                     for name in names], dtype=bool)


@dataclass(frozen=True)
class TailSlice:
    """Accuracy of one level on rare classes, the rest, and classes training never saw.

    Attributes:
        level: Taxonomy level.
        tail_train_examples: The tail is classes with at least 1 and fewer than this many training examples.
        tail_classes: Tail classes with test examples.
        tail_examples: Test examples of tail classes.
        tail_accuracy: Their accuracy (None without examples).
        folded_examples: Tail examples recorded as ``other`` (always wrong).
        head_examples: Test examples of classes with at least ``tail_train_examples`` training examples.
        head_accuracy: Their accuracy.
        unseen_examples: Test examples of classes never seen in training (``other`` is right).
        unseen_accuracy: Their accuracy.
    """

    level: int
    tail_train_examples: int
    tail_classes: int
    tail_examples: int
    tail_accuracy: float | None
    folded_examples: int
    head_examples: int
    head_accuracy: float | None
    unseen_examples: int
    unseen_accuracy: float | None


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def tail_slice(predictions: LevelPredictions, names: Sequence[str], train_counts: dict[str, int],
               tail_train_examples: int) -> TailSlice:
    """The :class:`TailSlice` of one level.

    Args:
        predictions: The level's predictions (folded examples already marked).
        names: Each example's real class name (:func:`true_class_names`).
        train_counts: Training examples per class name at this level.
        tail_train_examples: Tail bound.
    """
    seen = np.array([train_counts.get(n, 0) for n in names])
    real = np.array([n != OTHER for n in names], dtype=bool)
    tail = real & (seen > 0) & (seen < tail_train_examples)
    head = ~real | (seen >= tail_train_examples)
    unseen = real & (seen == 0)
    correct = predictions.correct
    return TailSlice(
        level=predictions.level, tail_train_examples=tail_train_examples,
        tail_classes=len({n for n, t in zip(names, tail.tolist(), strict=True) if t}),
        tail_examples=int(tail.sum()), tail_accuracy=_mean(correct[tail]),
        folded_examples=int((tail & predictions.folded).sum()),
        head_examples=int(head.sum()), head_accuracy=_mean(correct[head]),
        unseen_examples=int(unseen.sum()), unseen_accuracy=_mean(correct[unseen]))
