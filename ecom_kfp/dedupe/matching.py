"""From per-product evidence (keys and hashes) to removal candidates, leak edges and conflicts.

Everything here works on numpy arrays, never on images or rows, so it runs on tens of millions of
products in one process (``benchmarks/bench_dedupe_scale.py``). Two kinds of output:

- **removal candidates**: pairs that are the same product. Byte-identical images, or the same
  normalised title with near-identical images (within ``--title-near-threshold``,
  ``--near-verify-bits`` and ``--title-colour-tolerance``; with ``--near-removes``, also
  near-identical images or embeddings alone), and
  in every case no disagreement of the catalog's labels (category path and the
  ``--variant-columns``, e.g. colour or gender): a shirt in red and the same shirt in peach may
  share a photo, but removing one loses a product.
- **leak edges**: pairs that must share a split. Every rule's matches, generously: identical
  titles, grid keys, near images (without the colour check), and every removal candidate, also
  the vetoed ones.

Byte-identical images of products whose category paths differ are **label conflicts** (one photo,
two labels): neither is removed, both are marked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecom_kfp.dedupe import rules
from ecom_kfp.dedupe.colour_thumbnail import MAX_LEVELS
from ecom_kfp.dedupe.config import DedupeConfig

#: Column 0 of :attr:`Evidence.labels` is the category path; the others are variant attributes.
CATEGORY = 0


@dataclass(frozen=True)
class Evidence:
    """What the rules know about ``n`` products, column-wise.

    Keys are integers (equal values, equal keys; -1 = none). ``labels`` holds, per product, the
    category path's key then one key per variant attribute (-1 = unknown, agrees with anything).
    """

    sha256: np.ndarray  # (n,) int64
    title: np.ndarray  # (n,) int64
    grid: np.ndarray  # (n,) int64, -1 also for pictures without detail
    phash: np.ndarray  # (n,) uint64
    phash256: np.ndarray  # (n, 4) uint64
    thumbnail: np.ndarray  # (n, k) uint8
    detailed: np.ndarray  # (n,) bool: pictures with enough detail for near matching
    labels: np.ndarray  # (n, 1 + variant columns) int64

    def __len__(self) -> int:
        return len(self.sha256)


@dataclass(frozen=True)
class RemovalEdges:
    """Removal candidates, one edge per product pair: ``code`` indexes
    :data:`~ecom_kfp.dedupe.rules.REMOVAL_RULES` (the most certain rule that matched the pair)."""

    left: np.ndarray
    right: np.ndarray
    distance: np.ndarray
    code: np.ndarray

    def __len__(self) -> int:
        return len(self.left)


@dataclass(frozen=True)
class Matches:
    """What :func:`match` found.

    Attributes:
        removal: Candidate removal pairs, one edge per pair, with the most certain rule.
        leak: Edges of every rule, for leak groups (may repeat pairs).
        vetoed: Per removal rule, candidate pairs refused because the products' labels disagree.
        conflicts: Byte-identical pairs whose labels disagree, ``(left, right)``.
        conflict_fields: Per conflict, a bool per label column: which ones disagree.
        shared_keys: Per key rule, products whose key is too common to be evidence.
    """

    removal: RemovalEdges
    leak: list[rules.RuleEdges]
    vetoed: dict[str, int]
    conflicts: tuple[np.ndarray, np.ndarray]
    conflict_fields: np.ndarray
    shared_keys: dict[str, int]


def disagreement(labels: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``(pairs, columns)`` bool: both products know the label and the values differ."""
    a, b = labels[left], labels[right]
    return (a >= 0) & (b >= 0) & (a != b)


def _edges(rule: str, left: np.ndarray, right: np.ndarray, distance: np.ndarray | None = None) -> rules.RuleEdges:
    return rules.RuleEdges(rule=rule, left=left, right=right,
                           distance=np.zeros(len(left)) if distance is None else distance.astype(np.float64))


def _near_edges(config: DedupeConfig, evidence: Evidence) -> tuple[rules.RuleEdges, rules.NearRule]:
    """Near-image edges for leak groups (64-bit search and 256-bit check, no colour check) and
    the full rule that removal candidates must also pass."""
    checks = {"phashes": evidence.phash, "phashes256": evidence.phash256, "thumbnails": evidence.thumbnail,
              "threshold": config.near_threshold, "verify_bits": config.near_verify_bits}
    leak = rules.phash_edges(rules.NearRule(**checks, colour_tolerance=MAX_LEVELS), evidence.detailed,
                             progress=config.progress)
    return leak, rules.NearRule(**checks, colour_tolerance=config.near_colour_tolerance)


def _title_image_pairs(config: DedupeConfig, evidence: Evidence, usable_title: np.ndarray) -> rules.RuleEdges:
    """Products with the same title whose pictures agree within the title thresholds and the
    256-bit pHash check."""
    left, right = rules.key_pairs(evidence.title, usable_title & evidence.detailed)
    near = rules.NearRule(phashes=evidence.phash, phashes256=evidence.phash256, thumbnails=evidence.thumbnail,
                          threshold=config.title_near_threshold, verify_bits=config.near_verify_bits,
                          colour_tolerance=config.title_colour_tolerance)
    ok, bits = near.check(left, right)
    return _edges(rules.PHASH_TITLE, left[ok], right[ok], bits[ok])


def match(config: DedupeConfig, evidence: Evidence, embedding: rules.RuleEdges | None = None) -> Matches:
    """Run every enabled rule on ``evidence`` (see the module docstring).

    Args:
        config: The stage settings (rules switched on, thresholds).
        evidence: The products' keys and hashes.
        embedding: The embedding rule's edges, when it ran: like near images, they join leak
            groups, and remove only with ``--near-removes``.
    """
    leak: list[rules.RuleEdges] = []
    candidates: list[rules.RuleEdges] = [embedding] if embedding is not None and config.near_removes else []
    if embedding is not None and not config.near_removes:
        leak.append(embedding)
    shared: dict[str, int] = {}
    everyone = np.ones(len(evidence), dtype=bool)
    usable: dict[str, np.ndarray] = {}
    for name, on, keys in ((rules.SHA256, config.sha256_rule, evidence.sha256),
                           (rules.TITLE, config.title_rule or config.phash_title_rule, evidence.title),
                           (rules.GRID, config.grid_rule, evidence.grid)):
        if on:
            usable[name] = rules.usable_keys(keys, everyone)
            shared[name] = int(np.sum((keys >= 0) & ~usable[name]))
    if config.sha256_rule:
        candidates.append(_edges(rules.SHA256, *rules.key_pairs(evidence.sha256, usable[rules.SHA256])))
    if config.phash_title_rule:
        candidates.append(_title_image_pairs(config, evidence, usable[rules.TITLE]))
    if config.phash_rule:
        near_leak, near = _near_edges(config, evidence)
        leak.append(near_leak)
        if config.near_removes:
            ok, _ = near.check(near_leak.left, near_leak.right)
            candidates.append(_edges(rules.PHASH, near_leak.left[ok], near_leak.right[ok], near_leak.distance[ok]))
    for name, on, keys in ((rules.TITLE, config.title_rule, evidence.title), (rules.GRID, config.grid_rule,
                                                                              evidence.grid)):
        if on:
            leak.append(rules.key_edges(name, keys, usable[name]))
    leak.extend(candidates)
    vetoed: dict[str, int] = {}
    kept_candidates: list[rules.RuleEdges] = []
    conflicts = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    conflict_fields = np.zeros((0, evidence.labels.shape[1]), dtype=bool)
    for edges in candidates:
        differs = disagreement(evidence.labels, edges.left, edges.right)
        refused = differs.any(axis=1)
        vetoed[edges.rule] = int(refused.sum())
        kept_candidates.append(_edges(edges.rule, edges.left[~refused], edges.right[~refused],
                                      edges.distance[~refused]))
        if edges.rule == rules.SHA256:
            conflicts = (edges.left[refused], edges.right[refused])
            conflict_fields = differs[refused]
    return Matches(removal=best_rule_per_pair(kept_candidates), leak=leak, vetoed=vetoed, conflicts=conflicts,
                   conflict_fields=conflict_fields, shared_keys=shared)


def best_rule_per_pair(edges: list[rules.RuleEdges]) -> RemovalEdges:
    """One edge per product pair, from the first rule in :data:`~ecom_kfp.dedupe.rules.REMOVAL_RULES` order."""
    left = np.concatenate([np.minimum(e.left, e.right) for e in edges] or [np.zeros(0, np.int64)]).astype(np.int64)
    right = np.concatenate([np.maximum(e.left, e.right) for e in edges] or [np.zeros(0, np.int64)]).astype(np.int64)
    distance = np.concatenate([e.distance for e in edges] or [np.zeros(0)])
    code = np.concatenate([np.full(len(e), rules.REMOVAL_RULES.index(e.rule), np.int8) for e in edges]
                          or [np.zeros(0, np.int8)])
    order = np.lexsort((code, right, left))
    left, right, distance, code = left[order], right[order], distance[order], code[order]
    first = np.ones(len(left), dtype=bool)
    first[1:] = (left[1:] != left[:-1]) | (right[1:] != right[:-1])
    return RemovalEdges(left=left[first], right=right[first], distance=distance[first],
                        code=code[first])
