"""Merge rule matches into duplicate groups and pick the product each group keeps.

Kept-product policy (deterministic, documented in the CLI help): within a group, keep the product
with the most image pixels (original width x height), then the most complete metadata (count of
non-empty title, brand, price, category path, business value), then the smallest ``product_id``.
The group id is the kept product's id, so it is stable and readable.

Every dropped product records why it belongs with the kept one: the first rule in
:data:`~ecom_kfp.dedupe.rules.RULES` order that matches the two directly, with its distance
(Hamming bits for pHash, ``1 - cosine similarity`` for embeddings, 0 for key rules); or
``transitive`` (distance null) when it only reaches the kept product through other members of
the group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ecom_kfp.dedupe.rules import RULES, TRANSITIVE, PairRule, RuleEdges
from ecom_kfp.dedupe.union_find import UnionFind


@dataclass(frozen=True)
class Groups:
    """Group assignment of ``n`` items (indices into the readable products)."""

    kept_index: np.ndarray  # index of the item kept for each item's group (itself when kept)
    group_size: np.ndarray
    rule: np.ndarray  # object: why a dropped item matches; None for kept items
    distance: np.ndarray  # float: NaN for kept items and transitive matches

    @property
    def kept(self) -> np.ndarray:
        """Mask of kept items."""
        return self.kept_index == np.arange(len(self.kept_index))


def union_groups(n: int, edges: Sequence[RuleEdges]) -> np.ndarray:
    """Connected components of all rules' edges: a representative index per item."""
    sets = UnionFind(n)
    for rule_edges in edges:
        sets.union(rule_edges.left, rule_edges.right)
    return sets.roots()


def choose_kept(roots: np.ndarray, pixels: np.ndarray, completeness: np.ndarray,
                product_ids: np.ndarray) -> np.ndarray:
    """Index of the kept item of each item's group, by the module's kept-product policy."""
    n = len(roots)
    id_rank = np.empty(n, dtype=np.int64)
    id_rank[np.argsort(product_ids, kind="stable")] = np.arange(n)
    order = np.lexsort((id_rank, -completeness, -pixels, roots))
    first_in_group = np.concatenate([[True], roots[order][1:] != roots[order][:-1]]) if n else np.zeros(0, bool)
    best_of_root = np.empty(n, dtype=np.int64)
    best_of_root[roots[order][first_in_group]] = order[first_in_group]
    return best_of_root[roots]


def explain(kept_index: np.ndarray, rule_keys: Mapping[str, np.ndarray],
            pair_rules: Mapping[str, PairRule]) -> tuple[np.ndarray, np.ndarray]:
    """Rule and distance of each dropped item against its kept item (see module docstring).

    Args:
        kept_index: Kept item per item.
        rule_keys: Enabled key rules -> integer key per item (-1: the item has no key).
        pair_rules: Enabled pair rules (pHash, embedding) by name.
    """
    n = len(kept_index)
    rule = np.full(n, None, dtype=object)
    distance = np.full(n, np.nan)
    undecided = kept_index != np.arange(n)
    for name in RULES:
        if name in pair_rules:
            ok, rule_distance = pair_rules[name].check(np.arange(n), kept_index)
            hit = undecided & ok
            distance[hit] = rule_distance[hit]
        elif name in rule_keys:
            keys = rule_keys[name]
            hit = undecided & (keys >= 0) & (keys == keys[kept_index])
            distance[hit] = 0.0
        else:
            continue
        rule[hit] = name
        undecided &= ~hit
    rule[undecided] = TRANSITIVE
    return rule, distance


def build_groups(edges: Sequence[RuleEdges], rule_keys: Mapping[str, np.ndarray],
                 pair_rules: Mapping[str, PairRule], pixels: np.ndarray,
                 completeness: np.ndarray, product_ids: np.ndarray) -> Groups:
    """Union all edges, pick kept items and explain every dropped one."""
    n = len(product_ids)
    roots = union_groups(n, edges)
    kept_index = choose_kept(roots, pixels, completeness, product_ids)
    rule, distance = explain(kept_index, rule_keys, pair_rules)
    sizes = np.bincount(roots, minlength=n)[roots] if n else np.zeros(0, dtype=np.int64)
    return Groups(kept_index=kept_index, group_size=sizes, rule=rule, distance=distance)
