"""Train/val/test assignment by duplicate group: leak-free and deterministic.

Every product of a duplicate group lands in the same split, so a near-copy of a test product is
never trained on. Without stratification a group's split depends only on the hash of its id (and
the salt), so adding products to the catalog never moves existing groups. With stratification each
top-level category is split on its own: its groups, ordered by the same hash, are cut at the
exact shares, so a small category still gets its share of val and test examples.

The groups are dedupe's leak groups (``split_group``). A group holding a product marked
``label_conflict`` (the same photo as a product of another category) goes to train instead of
test, so the test split's golden labels are never in doubt.
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
                  stratify: bool = False) -> dict[str, str]:
    """Split of each product, keyed by product id.

    Args:
        products: The products to split.
        fractions: Train, val and test shares (summing to 1).
        salt: Mixed into every hash.
        stratify: Cut each top-level category's groups at the exact shares.

    Returns:
        ``product_id -> "train" | "val" | "test"``; never ``"test"`` for a group with a label conflict.
    """
    members: dict[str, list[Product]] = defaultdict(list)
    for product in products:
        members[product.group_id].append(product)
    if stratify:
        group_split = _stratified(members, fractions, salt)
    else:
        group_split = {group: _split_of(unit_hash(salt, group), fractions) for group in members}
    for group, rows in members.items():
        if group_split[group] == "test" and any(p.label_conflict for p in rows):
            group_split[group] = "train"
    return {p.product_id: group_split[group] for group, rows in members.items() for p in rows}


def _stratified(members: dict[str, list[Product]], fractions: Sequence[float], salt: str) -> dict[str, str]:
    strata: dict[str, list[str]] = defaultdict(list)
    for group, rows in members.items():
        # A group's stratum comes from its first member by id, so input order does not matter.
        first = min(rows, key=lambda p: p.product_id)
        strata[first.category_path[0] if first.category_path else ""].append(group)
    assignment: dict[str, str] = {}
    for groups in strata.values():
        groups.sort(key=lambda g: (unit_hash(salt, g), g))
        # Cumulative rounding cuts at the exact shares without drifting over many strata.
        n, start, cumulative = len(groups), 0, 0.0
        for split, share in zip(SPLITS, fractions, strict=True):
            cumulative += share
            end = n if split == SPLITS[-1] else round(n * cumulative)
            assignment.update((g, split) for g in groups[start:end])
            start = end
    return assignment
