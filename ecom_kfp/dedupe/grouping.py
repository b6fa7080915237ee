"""Removal groups formed around kept products, and generous leak groups for the splits.

Kept-product policy (deterministic): the product with the most image pixels (original width x
height), then the most complete metadata (count of non-empty title, brand, price, category path,
business value), then the smallest ``product_id`` ranks first.

**Removal groups never chain.** Products are visited in rank order; a product not yet removed is
kept, and every not-yet-decided product that matches it *directly* (a removal candidate pair) is
removed into its group. So a~b~c with a and c unrelated keeps a, removes b, and keeps c. This
is the lexicographically first maximal independent set of the candidate graph, computed in
vectorised rounds: every undecided product ranked before all its undecided neighbours is kept,
and its undecided neighbours are removed, until nothing is undecided. A removed product then
joins the best-ranked kept product it matches, so the group is the one sequential visiting gives.

**Leak groups** are connected components (union-find) of every rule's edges: generous on purpose,
so that no near-copy of a test product is trained on. A leak group's id is its best-ranked
product's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecom_kfp.dedupe.matching import Matches, RemovalEdges
from ecom_kfp.dedupe.rules import REMOVAL_RULES, RuleEdges
from ecom_kfp.dedupe.union_find import UnionFind

UNDECIDED, KEPT, REMOVED = 0, 1, 2


@dataclass(frozen=True)
class Groups:
    """Group assignment of ``n`` items (indices into the readable products)."""

    kept_index: np.ndarray  # index of the kept item of each item's removal group (itself when kept)
    group_size: np.ndarray  # size of each item's removal group
    rule: np.ndarray  # object: the rule matching a removed item to its kept one; None for kept items
    distance: np.ndarray  # float: that rule's distance; NaN for kept items
    split_index: np.ndarray  # index of the best-ranked item of each item's leak group
    split_size: np.ndarray  # size of each item's leak group
    label_conflict: np.ndarray  # bool: byte-identical image of a product with another category

    @property
    def kept(self) -> np.ndarray:
        """Mask of kept items."""
        return self.kept_index == np.arange(len(self.kept_index))


def priority_rank(pixels: np.ndarray, completeness: np.ndarray, product_ids: pa.Array) -> np.ndarray:
    """Rank of every item by the kept-product policy (0 = kept first)."""
    n = len(product_ids)
    id_rank = np.empty(n, dtype=np.int64)
    # Arrow's sort is stable and orders UTF-8 bytes, i.e. code points: numpy's order of the same strings.
    id_rank[pc.sort_indices(product_ids).to_numpy()] = np.arange(n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((id_rank, -completeness, -pixels))] = np.arange(n)
    return rank


def star_groups(n: int, edges: RemovalEdges, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Removal groups around kept products (see the module docstring).

    Args:
        n: Number of items.
        edges: Removal candidate pairs (one edge per pair).
        rank: Distinct priority of every item (smaller is kept first).

    Returns:
        The kept item of every item, and for removed items the rule code (index into
        :data:`~ecom_kfp.dedupe.rules.REMOVAL_RULES`, -1 for kept ones) and distance of their
        direct match with it.
    """
    src = np.concatenate([edges.left, edges.right])
    dst = np.concatenate([edges.right, edges.left])
    code = np.concatenate([edges.code, edges.code])
    distance = np.concatenate([edges.distance, edges.distance])
    state = np.zeros(n, dtype=np.int8)
    best = np.empty(n, dtype=np.int64)
    live = np.ones(len(src), dtype=bool)
    while live.any():
        s, d = src[live], dst[live]
        best[s] = np.iinfo(np.int64).max
        np.minimum.at(best, s, rank[d])
        ends = np.unique(s)
        state[ends[rank[ends] < best[ends]]] = KEPT
        state[d[(state[s] == KEPT) & (state[d] == UNDECIDED)]] = REMOVED
        live &= (state[src] == UNDECIDED) & (state[dst] == UNDECIDED)
    # Left undecided: every neighbour was removed by a better-ranked product, so nothing removes it.
    state[state == UNDECIDED] = KEPT
    kept_index = np.arange(n)
    rule_code = np.full(n, -1, dtype=np.int8)
    rule_distance = np.full(n, np.nan)
    joins = np.nonzero((state[src] == REMOVED) & (state[dst] == KEPT))[0]
    joins = joins[np.lexsort((rank[dst[joins]], src[joins]))]
    first = np.ones(len(joins), dtype=bool)
    first[1:] = src[joins][1:] != src[joins][:-1]
    joins = joins[first]
    kept_index[src[joins]] = dst[joins]
    rule_code[src[joins]] = code[joins]
    rule_distance[src[joins]] = distance[joins]
    return kept_index, rule_code, rule_distance


def leak_groups(n: int, edges: Sequence[RuleEdges | RemovalEdges], rank: np.ndarray) -> np.ndarray:
    """The best-ranked item of every item's leak group (connected components of ``edges``)."""
    sets = UnionFind(n)
    for rule_edges in edges:
        sets.union(rule_edges.left, rule_edges.right)
    roots = sets.roots()
    best = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(best, roots, rank)
    by_rank = np.argsort(rank)
    return by_rank[best[roots]]


def build_groups(matches: Matches, rank: np.ndarray) -> Groups:
    """Removal groups, leak groups and label conflicts of ``len(rank)`` items."""
    n = len(rank)
    kept_index, code, distance = star_groups(n, matches.removal, rank)
    names = np.array([None, *REMOVAL_RULES], dtype=object)
    split_index = leak_groups(n, [*matches.leak, matches.removal], rank)
    conflict = np.zeros(n, dtype=bool)
    category = matches.conflict_fields[:, 0] if len(matches.conflict_fields) else np.zeros(0, bool)
    conflict[matches.conflicts[0][category]] = True
    conflict[matches.conflicts[1][category]] = True
    return Groups(kept_index=kept_index, group_size=np.bincount(kept_index, minlength=n)[kept_index],
                  rule=names[code + 1], distance=distance, split_index=split_index,
                  split_size=np.bincount(split_index, minlength=n)[split_index], label_conflict=conflict)
