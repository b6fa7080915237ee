"""Removal groups around kept products (no chains) and leak groups, on evidence arrays."""

from __future__ import annotations

import numpy as np
import pytest

from ecom_kfp.dedupe import DedupeConfig
from ecom_kfp.dedupe.grouping import build_groups, star_groups
from ecom_kfp.dedupe.matching import Evidence, RemovalEdges, match


def evidence(phashes: list[int], titles: list[int], sha: list[int] | None = None) -> Evidence:
    """Products with the given 64-bit pHashes and title keys, plain thumbnails and no labels."""
    n = len(phashes)
    return Evidence(sha256=np.array(sha or [-1] * n, np.int64), title=np.array(titles, np.int64),
                    grid=np.full(n, -1, np.int64), phash=np.array(phashes, np.uint64),
                    phash256=np.zeros((n, 4), np.uint64), thumbnail=np.zeros((n, 192), np.uint8),
                    detailed=np.ones(n, bool), labels=np.full((n, 1), -1, np.int64))


def bits(count: int) -> int:
    """A hash with the lowest ``count`` bits set (distance ``count`` from 0)."""
    return (1 << count) - 1


CONFIG = DedupeConfig("in", "out", title_near_threshold=6, progress=False)


@pytest.mark.parametrize(("rank", "kept", "removed_into"), [
    ([0, 1, 2], {0, 2}, {1: 0}),  # a kept first: b joins it, c is too far from a and stays
    ([1, 0, 2], {1}, {0: 1, 2: 1}),  # b kept first: both ends match it directly
])
def test_a_chain_of_near_matches_never_merges_its_far_ends(rank, kept, removed_into):
    # a~b and b~c within 6 bits (5 each), a and c 10 bits apart; all three share a title.
    found = match(CONFIG, evidence([0, bits(5), bits(10)], [7, 7, 7]))
    assert sorted(zip(found.removal.left.tolist(), found.removal.right.tolist())) == [(0, 1), (1, 2)]
    groups = build_groups(found, np.array(rank))
    assert set(np.nonzero(groups.kept)[0].tolist()) == kept
    assert {i: int(k) for i, k in enumerate(groups.kept_index) if i != k} == removed_into
    assert set(groups.rule[list(removed_into)]) <= {"phash_title"}
    assert len(set(groups.split_index.tolist())) == 1, "the whole chain is one leak group"


def test_titles_alone_join_leak_groups_and_too_common_keys_join_nothing():
    titles = [1, 1, 2] + [3] * 101
    far_apart = [bits(60), 0, bits(30)] + [int(v) for v in np.random.default_rng(0).integers(0, 2**63, 101)]
    found = match(CONFIG, evidence(far_apart, titles))
    groups = build_groups(found, np.arange(len(titles)))
    assert len(found.removal) == 0 and groups.kept.all()
    assert groups.split_index[:3].tolist() == [0, 0, 2]
    assert found.shared_keys["title"] == 101 and (groups.split_index[3:] == np.arange(3, 104)).all()


def sequential_star_groups(n: int, left: np.ndarray, right: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Reference: visit products in rank order; one not yet removed is kept and takes its matches."""
    neighbours = [set() for _ in range(n)]
    for a, b in zip(left.tolist(), right.tolist()):
        neighbours[a].add(b)
        neighbours[b].add(a)
    kept_index = np.full(n, -1)
    for item in np.argsort(rank):
        if kept_index[item] == -1:
            kept_index[item] = item
            for other in neighbours[item]:
                if kept_index[other] == -1:
                    kept_index[other] = item
    return kept_index


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_rounds_equal_sequential_visiting_and_every_removal_is_direct(seed):
    rng = np.random.default_rng(seed)
    n = 300
    pairs = np.unique(np.sort(rng.integers(0, n, size=(400, 2)), axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    edges = RemovalEdges(left=pairs[:, 0], right=pairs[:, 1], distance=np.zeros(len(pairs)),
                         code=np.zeros(len(pairs), np.int8))
    rank = rng.permutation(n)
    kept_index, _, _ = star_groups(n, edges, rank)
    assert (kept_index == sequential_star_groups(n, pairs[:, 0], pairs[:, 1], rank)).all()
    linked = set(map(tuple, pairs.tolist()))
    removed = np.nonzero(kept_index != np.arange(n))[0]
    assert all(tuple(sorted((int(i), int(kept_index[i])))) in linked for i in removed)
    assert (kept_index[kept_index] == kept_index).all(), "kept products are never removed"
