"""Train/val/test assignment by duplicate group: leak-free and deterministic.

Every product of a duplicate group lands in the same split, so a near-copy of a test product is
never trained on. Without stratification a group's split depends only on the hash of its id (and
the salt), so adding products to the catalog never moves existing groups. With stratification each
top-level category is split on its own: its groups, ordered by the same hash, are cut at the
exact shares, so a small category still gets its share of val and test examples.

The groups are dedupe's leak groups (``split_group``). A group holding a product marked
``label_conflict`` (the same photo as a product of another category) goes to train instead of
test, so the test split's golden labels are never in doubt.

Cross-validation (``folds`` >= 2): the groups, ordered by the same hash (per top-level category
with stratification), are cut into ``folds`` equal folds; fold ``fold`` is the test split and
the other groups go to train or val at the train:val ratio of the shares, by a second hash. The
``folds`` builds with ``fold = 0 .. folds-1`` therefore test every product exactly once, each
time on a model that never saw its duplicate group.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from ecom_kfp.tfrecord_build.config import SPLITS
from ecom_kfp.tfrecord_build.inputs import Product

_HASH_SPACE = float(2**64)


def unit_hash(salt: str, key: str) -> float:
    """A uniform number in [0, 1) from ``key``; stable across processes, machines and Python versions."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPACE


def _split_of(position: float, fractions: Sequence[float]) -> str:
    cumulative = 0.0
    for split, share in zip(SPLITS, fractions, strict=True):
        cumulative += share
        if position < cumulative:
            return split
    return SPLITS[-1]  # position within rounding of 1.0


def assign_splits(products: Sequence[Product], fractions: Sequence[float], *, salt: str,
                  stratify: bool = False, folds: int = 0, fold: int = 0) -> dict[str, str]:
    """Split of each product, keyed by product id.

    Args:
        products: The products to split.
        fractions: Train, val and test shares (summing to 1); with ``folds`` only the train:val
            ratio is used.
        salt: Mixed into every hash.
        stratify: Cut each top-level category's groups at the exact shares (or into equal folds).
        folds: Number of cross-validation folds; 0 = split by ``fractions``.
        fold: The fold that is the test split (0-based), with ``folds``.

    Returns:
        ``product_id -> "train" | "val" | "test"``; never ``"test"`` for a group with a label conflict.
    """
    members: dict[str, list[Product]] = defaultdict(list)
    for product in products:
        members[product.group_id].append(product)
    if folds:
        kept = fractions[0] + fractions[1]
        train_val = (fractions[0] / kept, fractions[1] / kept, 0.0)
        group_split = {group: "test" if group_fold == fold else _split_of(unit_hash(f"{salt}\x00val", group), train_val)
                       for group, group_fold in assign_folds(members, folds, salt, stratify).items()}
    elif stratify:
        group_split = _stratified(members, fractions, salt)
    else:
        group_split = {group: _split_of(unit_hash(salt, group), fractions) for group in members}
    for group, rows in members.items():
        if group_split[group] == "test" and any(p.label_conflict for p in rows):
            group_split[group] = "train"
    return {p.product_id: group_split[group] for group, rows in members.items() for p in rows}


def assign_folds(members: dict[str, list[Product]], folds: int, salt: str, stratify: bool) -> dict[str, int]:
    """Cross-validation fold (0-based) of each group: equal folds of the hash order, per stratum."""
    assignment: dict[str, int] = {}
    for groups in _strata(members, salt, stratify):
        assignment.update((g, rank * folds // len(groups)) for rank, g in enumerate(groups))
    return assignment


def _strata(members: dict[str, list[Product]], salt: str, stratify: bool) -> list[list[str]]:
    """The groups of each stratum (top-level category, or one for all), ordered by their hash."""
    strata: dict[str, list[str]] = defaultdict(list)
    for group, rows in members.items():
        # A group's stratum comes from its first member by id, so input order does not matter.
        first = min(rows, key=lambda p: p.product_id)
        strata[first.category_path[0] if stratify and first.category_path else ""].append(group)
    return [sorted(groups, key=lambda g: (unit_hash(salt, g), g)) for groups in strata.values()]


def _stratified(members: dict[str, list[Product]], fractions: Sequence[float], salt: str) -> dict[str, str]:
    assignment: dict[str, str] = {}
    for groups in _strata(members, salt, stratify=True):
        # Cumulative rounding cuts at the exact shares without drifting over many strata.
        n, start, cumulative = len(groups), 0, 0.0
        for split, share in zip(SPLITS, fractions, strict=True):
            cumulative += share
            end = n if split == SPLITS[-1] else round(n * cumulative)
            assignment.update((g, split) for g in groups[start:end])
            start = end
    return assignment
