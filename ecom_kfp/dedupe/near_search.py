"""All pairs of 64-bit hashes within a Hamming radius, without comparing all pairs.

Multi-index hashing by the pigeonhole principle: split the 64 bits into ``m`` blocks. Two hashes
at distance ``<= r`` differ in at most ``r`` blocks, so they agree exactly on at least ``k = m - r``
of them. For every choice of ``k`` blocks, sorting the hashes by those blocks puts every such pair
next to each other in a run of equal keys; only pairs inside runs are compared. That is exact (no
pair within the radius is missed), and with ``m`` chosen so keys are about ``log2(n)`` bits long,
runs are short: the work grows like ``C(m, k) * n log n``, not ``n**2``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ecom_kfp.dedupe.phash import hamming

BITS = 64
#: Measured cost of sorting one element in one table relative to checking one candidate pair
#: (about 150 ns each on numpy 2.4), for choosing ``m``.
_SORT_COST = 1.0


@dataclass(frozen=True)
class NearPairs:
    """Pairs ``(left[i], right[i])`` (``left < right``, sorted, unique) at Hamming ``distance[i]``."""

    left: np.ndarray
    right: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.left)


def block_masks(blocks: int) -> list[int]:
    """Bit masks of ``blocks`` contiguous, near-equal blocks covering the 64 bits."""
    bounds = [round(BITS * i / blocks) for i in range(blocks + 1)]
    return [((1 << (hi - lo)) - 1) << lo for lo, hi in zip(bounds, bounds[1:])]


def choose_blocks(n: int, radius: int) -> int:
    """Number of blocks ``m`` minimising estimated sort + candidate work for ``n`` uniform hashes."""
    best_cost, best_m = math.inf, radius + 1
    for m in range(radius + 1, min(BITS, radius + 16) + 1):
        tables = math.comb(m, m - radius)
        key_bits = BITS * (m - radius) / m
        candidates = tables * n * n / 2.0 ** (key_bits + 1)
        cost = tables * n * _SORT_COST + candidates
        if cost < best_cost:
            best_cost, best_m = cost, m
    return best_m


def _sort_by_blocks(values: np.ndarray, masks: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Keys (the chosen blocks, packed) in sorted order, and the item order that sorts them.

    When the packed key and the item index fit in 64 bits together, one plain ``np.sort`` of
    ``key << index_bits | index`` replaces a slower ``argsort``.
    """
    key = np.zeros(len(values), dtype=np.uint64)
    width = 0
    for mask in masks:
        low = (mask & -mask).bit_length() - 1
        bits = mask.bit_count()
        key |= ((values >> np.uint64(low)) & np.uint64((1 << bits) - 1)) << np.uint64(width)
        width += bits
    index_bits = max(1, (len(values) - 1).bit_length())
    if width + index_bits > BITS:
        order = np.argsort(key)
        return key[order], order
    packed = np.sort((key << np.uint64(index_bits)) | np.arange(len(values), dtype=np.uint64))
    return packed >> np.uint64(index_bits), (packed & np.uint64((1 << index_bits) - 1)).astype(np.int64)


def iter_run_pairs(sorted_keys: np.ndarray, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs of positions inside runs of equal keys (keys sorted; ``order`` maps to items), one
    block per offset within the runs, so a caller can filter each block before the next is made.

    No block holds more than one pair per key: candidate pairs of low-entropy hashes (drawn or
    near-blank pictures share most blocks) can number hundreds of millions, which is what
    gathering them all at once held in memory.
    """
    # One pass over all keys finds the neighbours in runs; later offsets only look at those.
    starts = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    offset = 1
    # A pair (i, i + d) is in a run only if (i, i + d - 1) is, so the candidates only shrink;
    # the loop ends after (longest run) iterations.
    while len(starts):
        yield order[starts], order[starts + offset]
        offset += 1
        starts = starts[starts + offset < len(sorted_keys)]
        starts = starts[sorted_keys[starts + offset] == sorted_keys[starts]]


def run_pairs(sorted_keys: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of positions inside runs of equal keys (keys sorted; ``order`` maps to items)."""
    blocks = list(iter_run_pairs(sorted_keys, order))
    lefts = [np.zeros(0, np.int64), *(left for left, _ in blocks)]
    rights = [np.zeros(0, np.int64), *(right for _, right in blocks)]
    return np.concatenate(lefts), np.concatenate(rights)


def near_value_pairs(values: np.ndarray, radius: int, progress: bool = False) -> NearPairs:
    """Every pair of *distinct* hash values within ``radius`` bits.

    Args:
        values: ``(n,)`` distinct uint64 hashes.
        radius: Maximum Hamming distance, ``0 <= radius < 64``.
        progress: Show a tqdm bar over the index tables.

    Returns:
        Unique pairs of indices into ``values`` with ``left < right``, sorted, and their distances.
    """
    if not 0 <= radius < BITS:
        raise ValueError(f"radius must be in [0, {BITS}), got {radius}")
    values = np.asarray(values, dtype=np.uint64)
    n = len(values)
    lefts, rights = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    if radius > 0 and n > 1:
        masks = block_masks(choose_blocks(n, radius))
        combos = list(itertools.combinations(range(len(masks)), len(masks) - radius))
        for combo in tqdm(combos, desc="near-duplicate index", unit="table", disable=not progress):
            sorted_keys, order = _sort_by_blocks(values, [masks[b] for b in combo])
            for left, right in iter_run_pairs(sorted_keys, order):
                close = hamming(values[left], values[right]) <= radius
                lefts.append(np.minimum(left, right)[close])
                rights.append(np.maximum(left, right)[close])
    # A pair agreeing on several block combinations is found once per combination.
    codes = np.unique(np.concatenate(lefts).astype(np.int64) * n + np.concatenate(rights))
    left, right = codes // max(n, 1), codes % max(n, 1)
    return NearPairs(left=left, right=right, distance=hamming(values[left], values[right]))


def near_item_pairs(hashes: np.ndarray, radius: int, progress: bool = False) -> NearPairs:
    """Every pair of items whose hashes are within ``radius`` bits, equal hashes included.

    The index runs over distinct values; pairs of values expand to all pairs of their items, so
    callers should first collapse items that are interchangeable (the output grows with the square
    of how many items share a value).

    Args:
        hashes: ``(n,)`` uint64, one per item.
        radius: Maximum Hamming distance.
        progress: Show a tqdm bar over the index tables.

    Returns:
        Item index pairs (``left < right``, sorted) with the Hamming distance of their hashes.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    values, inverse = np.unique(hashes, return_inverse=True)
    inverse = inverse.ravel()
    near = near_value_pairs(values, radius, progress=progress)
    shared = np.nonzero(np.bincount(inverse, minlength=len(values)) > 1)[0]
    value_left = np.concatenate([near.left, shared])
    value_right = np.concatenate([near.right, shared])
    members = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(values))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    span = counts[value_left] * counts[value_right]
    pair_of = np.repeat(np.arange(len(value_left)), span)
    within = np.arange(len(pair_of)) - np.repeat(np.cumsum(span) - span, span)
    left = members[starts[value_left][pair_of] + within // counts[value_right][pair_of]]
    right = members[starts[value_right][pair_of] + within % counts[value_right][pair_of]]
    # A shared value is paired with itself: keep each unordered pair of its items once.
    keep = (left < right) | (value_left[pair_of] != value_right[pair_of])
    lo, hi = np.minimum(left, right)[keep], np.maximum(left, right)[keep]
    order = np.lexsort((hi, lo))
    lo, hi = lo[order], hi[order]
    return NearPairs(left=lo, right=hi, distance=hamming(hashes[lo], hashes[hi]))


def brute_force_neighbours(queries: np.ndarray, hashes: np.ndarray, radius: int,
                           block: int = 256) -> list[np.ndarray]:
    """Reference search: for each query hash, indices of all ``hashes`` within ``radius`` bits.

    Compares every query with every hash (``O(len(queries) * n)``), so it is only for checking
    :func:`near_pairs` on a sample.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    found: list[np.ndarray] = []
    for start in range(0, len(queries), block):
        chunk = np.asarray(queries[start:start + block], dtype=np.uint64)
        close = hamming(chunk[:, None], hashes[None, :]) <= radius
        found.extend(np.nonzero(row)[0] for row in close)
    return found
