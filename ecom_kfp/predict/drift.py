"""How far the predicted class distribution is from the training data's: a drift signal.

Per level, over the classes of the model's vocabulary: total variation distance (half the L1
distance of the two distributions, 0..1) and the population stability index
(``sum((p - q) * ln(p / q))``, with :data:`EPSILON` in empty classes). A common reading of PSI:
< 0.1 stable, 0.1-0.25 a moderate shift, > 0.25 a large one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

EPSILON = 1e-4
#: Classes listed per level in the report, by largest share difference.
TOP_SHIFTS = 5


@dataclass
class LevelDrift:
    """Distribution shift of one level's predictions against its training counts."""

    level: int
    total_variation: float
    psi: float
    predicted: int
    trained: int
    top_shifts: list[dict] = field(default_factory=list)


def _shares(counts: Mapping[str, int], classes: list[str]) -> list[float]:
    total = sum(counts.get(c, 0) for c in classes)
    return [counts.get(c, 0) / total if total else 0.0 for c in classes]


def level_drift(level: int, predicted: Counter[str], trained: Mapping[str, int]) -> LevelDrift | None:
    """The shift of ``predicted`` against ``trained`` class counts, or None when either is empty."""
    classes = sorted(set(trained) | set(predicted))
    if not sum(predicted.values()) or not sum(trained.values()):
        return None
    p, q = _shares(predicted, classes), _shares(trained, classes)
    tv = 0.5 * sum(abs(a - b) for a, b in zip(p, q))
    psi = sum((max(a, EPSILON) - max(b, EPSILON)) * math.log(max(a, EPSILON) / max(b, EPSILON)) for a, b in zip(p, q))
    shifts = sorted(zip(classes, p, q), key=lambda t: -abs(t[1] - t[2]))[:TOP_SHIFTS]
    return LevelDrift(level, tv, psi, sum(predicted.values()), sum(trained.values()),
                      [{"class": c, "predicted_share": a, "train_share": b} for c, a, b in shifts])
