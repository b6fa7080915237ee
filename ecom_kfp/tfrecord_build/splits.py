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
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecom_kfp.tfrecord_build.config import SPLITS
from ecom_kfp.tfrecord_build.inputs import Product

_HASH_SPACE = float(2**64)
#: Strings turned into Python objects at a time while hashing a column.
_HASH_BATCH = 10_000
TRAIN, TEST = SPLITS.index("train"), SPLITS.index("test")


def unit_hash(salt: str, key: str) -> float:
    """A uniform number in [0, 1) from ``key``; stable across processes, machines and Python versions."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPACE


def unit_hashes(salt: str, keys: pa.Array) -> np.ndarray:
    """:func:`unit_hash` of every string of ``keys``, as float64, a batch of Python strings at a time."""
    batches = (keys.slice(i, _HASH_BATCH).to_pylist() for i in range(0, len(keys), _HASH_BATCH))
    return np.fromiter((unit_hash(salt, key) for batch in batches for key in batch), np.float64, len(keys))


def string_ranks(keys: pa.Array) -> np.ndarray:
    """Rank of each string of ``keys`` in code-point order (UTF-8 byte order is code-point order)."""
    ranks = np.empty(len(keys), np.int64)
    ranks[pc.sort_indices(keys).to_numpy()] = np.arange(len(keys))
    return ranks


def hash_order(salt: str, keys: pa.Array) -> np.ndarray:
    """Indices of ``keys`` sorted by ``(unit_hash(salt, key), key)``, as ``sorted`` with that key would order them."""
    return np.lexsort((string_ranks(keys), unit_hashes(salt, keys)))


def _split_of(positions: np.ndarray, fractions: Iterable[float]) -> np.ndarray:
    """Split index of each position in [0, 1): the first split whose cumulative share exceeds it."""
    cumulative, bounds = 0.0, []
    for share in fractions:  # summed one by one, as the shares always were
        cumulative += share
        bounds.append(cumulative)
    # The last split also takes positions within rounding of 1.0.
    return np.minimum(np.searchsorted(np.array(bounds), positions, side="right"), len(SPLITS) - 1).astype(np.int8)


def assign_splits(products: Sequence[Product], fractions: Sequence[float], *, salt: str,
                  stratify: bool = False, folds: int = 0, fold: int = 0) -> dict[str, str]:
    """:func:`split_indices` of ``products``, keyed by product id (``"train" | "val" | "test"``)."""
    ids = pa.array([p.product_id for p in products], pa.string())
    indices = split_indices(ids, pa.array([p.group_id for p in products], pa.string()),
                            pa.array([p.category_path[0] if p.category_path else "" for p in products], pa.string()),
                            np.array([p.label_conflict for p in products], bool), fractions, salt=salt,
                            stratify=stratify, folds=folds, fold=fold)
    return {p.product_id: SPLITS[i] for p, i in zip(products, indices.tolist(), strict=True)}


def split_indices(product_ids: pa.Array, group_ids: pa.Array, tops: pa.Array, label_conflict: np.ndarray,
                  fractions: Sequence[float], *, salt: str, stratify: bool = False, folds: int = 0,
                  fold: int = 0) -> np.ndarray:
    """Split of each product, as an index into :data:`SPLITS`, computed on arrays (no object per product).

    Args:
        product_ids: The products' ids.
        group_ids: Their groups.
        tops: Their top-level categories (``""`` for none).
        label_conflict: Whether each product's label is in doubt.
        fractions: Train, val and test shares (summing to 1); with ``folds`` only the train:val
            ratio is used.
        salt: Mixed into every hash.
        stratify: Cut each top-level category's groups at the exact shares (or into equal folds).
        folds: Number of cross-validation folds; 0 = split by ``fractions``.
        fold: The fold that is the test split (0-based), with ``folds``.

    Returns:
        int8 split index per product; never test for a group with a label conflict.
    """
    encoded = pc.dictionary_encode(group_ids)
    codes, groups = encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary
    hashes = unit_hashes(salt, groups)
    if folds:
        kept = fractions[0] + fractions[1]
        group_split = _split_of(unit_hashes(f"{salt}\x00val", groups), (fractions[0] / kept, fractions[1] / kept, 0.0))
        group_split[_group_folds(codes, groups, hashes, product_ids, tops, folds, stratify) == fold] = TEST
    elif stratify:
        group_split = np.empty(len(groups), np.int8)
        for ordered in _strata(codes, groups, hashes, product_ids, tops, stratify=True):
            # Cumulative rounding cuts at the exact shares without drifting over many strata.
            n, start, cumulative = len(ordered), 0, 0.0
            for index, share in enumerate(fractions):
                cumulative += share
                end = n if index == len(SPLITS) - 1 else round(n * cumulative)
                group_split[ordered[start:end]] = index
                start = end
    else:
        group_split = _split_of(hashes, fractions)
    conflicted = np.bincount(codes, weights=label_conflict, minlength=len(groups)) > 0
    group_split[(group_split == TEST) & conflicted] = TRAIN
    return group_split[codes]


def _group_folds(codes: np.ndarray, groups: pa.Array, hashes: np.ndarray, product_ids: pa.Array, tops: pa.Array,
                 folds: int, stratify: bool) -> np.ndarray:
    """Cross-validation fold (0-based) of each group: equal folds of the hash order, per stratum."""
    assignment = np.empty(len(groups), np.int64)
    for ordered in _strata(codes, groups, hashes, product_ids, tops, stratify):
        assignment[ordered] = np.arange(len(ordered)) * folds // len(ordered)
    return assignment


def _strata(codes: np.ndarray, groups: pa.Array, hashes: np.ndarray, product_ids: pa.Array, tops: pa.Array,
            stratify: bool) -> list[np.ndarray]:
    """The groups (codes) of each stratum (top-level category, or one for all), ordered by ``(hash, group id)``."""
    ordered = np.lexsort((string_ranks(groups), hashes))
    if not stratify:
        return [ordered]
    # A group's stratum comes from its first member by id, so input order does not matter.
    by_group = np.lexsort((string_ranks(product_ids), codes))
    starts = np.flatnonzero(np.r_[True, np.diff(codes[by_group]) != 0])
    first_member = by_group[starts]  # codes run 0..len(groups)-1, each present, so group g is at starts[g]
    top = pc.dictionary_encode(pc.take(tops, pa.array(first_member)))
    stratum = top.indices.to_numpy(zero_copy_only=False)
    return [ordered[stratum[ordered] == s] for s in range(len(top.dictionary))]
