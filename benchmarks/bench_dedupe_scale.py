"""Dedupe's matching and grouping on millions of synthetic products (no images); prints one JSON document.

Everything an image would give (SHA-256 key, 64- and 256-bit pHashes, 8x8 YCbCr colour thumbnail,
colour-grid key) and every title and label is generated in memory: random pictures, titles drawn
from a large vocabulary, and planted groups:

- ``exact``: byte-identical copies of another product (same key, hashes, title and labels);
- ``near``: re-encoded copies (same title; pHash a few bits away, thumbnail within a few levels);
- ``conflict``: byte-identical copies of a product of another category;
- ``generic``: other pictures under another product's title (must share its leak group only).

Then the timed part (wall and CPU seconds: on a shared machine the CPU time is the steadier
figure): titles to keys, :func:`ecom_kfp.dedupe.matching.match` and
:func:`ecom_kfp.dedupe.grouping.build_groups` at the stage's default settings (one process).
Reported: wall time per step, peak RSS, and

- ``removal_recall`` per planted kind (copies removed into their source's group; conflicts must not be);
- ``brute_force``: for a sample of products, every product that any rule links to it, found by
  comparing it with all products: the share of removal candidates our search found, and the share
  of leak partners in its leak group (both 1.0 when the search is exact);
- ``direct``: whether every removed product matches its kept product directly (no chains).

Usage: ``python benchmarks/bench_dedupe_scale.py [--rows 10000000] [--sample 300]``
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecom_kfp.dedupe import DedupeConfig
from ecom_kfp.dedupe.colour_thumbnail import max_level_difference
from ecom_kfp.dedupe.grouping import build_groups
from ecom_kfp.dedupe.matching import Evidence, disagreement, match
from ecom_kfp.dedupe.phash import hamming, hamming_words
from ecom_kfp.dedupe.rules import MAX_SHARED_KEY, equal_value_ids, usable_keys

THUMBNAIL = 192
#: Share of rows of each planted kind.
PLANTED = {"exact": 0.01, "near": 0.01, "conflict": 0.001, "generic": 0.01}
NEAR_BITS = 4  # pHash bits flipped in a near copy (within the default 6 and 12)
NEAR_LEVELS = 5  # most thumbnail levels changed in a near copy (within the default 8 and 32)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Catalog:
    """Generated columns and the planted copies: ``copy[i]`` of ``source[i]``, of ``kind[i]``."""

    sha: np.ndarray
    phash: np.ndarray
    phash256: np.ndarray
    thumbnail: np.ndarray
    grid: np.ndarray
    category: np.ndarray
    titles: pa.Array
    source: np.ndarray
    copy: np.ndarray
    kind: np.ndarray


def flip_bits(rng: np.random.Generator, values: np.ndarray, bits: int) -> np.ndarray:
    """``values`` with ``bits`` random bit positions flipped (possibly the same one twice)."""
    out = values.copy()
    for _ in range(bits):
        out ^= np.uint64(1) << rng.integers(0, 64, values.shape, dtype=np.uint64)
    return out


def generate(rows: int, seed: int) -> Catalog:
    """A catalog of ``rows`` products with the planted groups of :data:`PLANTED`."""
    rng = np.random.default_rng(seed)
    sha = np.arange(rows, dtype=np.int64)
    phash = rng.integers(0, 2**64, rows, dtype=np.uint64, endpoint=False)
    phash256 = rng.integers(0, 2**64, (rows, 4), dtype=np.uint64, endpoint=False)
    thumbnail = rng.integers(0, 256, (rows, THUMBNAIL), dtype=np.uint8)
    grid = np.arange(rows, dtype=np.int64)
    category = rng.integers(0, 500, rows, dtype=np.int64)
    words = rng.integers(0, [5000, 300, 400], (rows, 3))
    counts = {kind: int(rows * share) for kind, share in PLANTED.items()}
    planted = rng.permutation(rows)[:2 * sum(counts.values())].reshape(2, -1)
    source, copy = planted
    kind = np.repeat(np.array(list(counts)), list(counts.values()))
    for name in ("exact", "near", "conflict"):
        s, c = source[kind == name], copy[kind == name]
        phash[c], phash256[c], thumbnail[c], words[c] = phash[s], phash256[s], thumbnail[s], words[s]
        grid[c], category[c] = grid[s], category[s]
        if name != "near":
            sha[c] = sha[s]
    near = copy[kind == "near"]
    phash[near] = flip_bits(rng, phash[near], NEAR_BITS)
    phash256[near] = flip_bits(rng, phash256[near], NEAR_BITS)  # up to 4 bits per word, 16 of 256
    noise = rng.integers(-NEAR_LEVELS, NEAR_LEVELS + 1, (len(near), THUMBNAIL))
    thumbnail[near] = np.clip(thumbnail[near].astype(np.int16) + noise, 0, 255).astype(np.uint8)
    conflict = copy[kind == "conflict"]
    category[conflict] = (category[conflict] + 1) % 500
    words[copy[kind == "generic"]] = words[source[kind == "generic"]]
    text = [pa.array(words[:, i]).cast(pa.string()) for i in range(3)]
    titles = pc.binary_join_element_wise(*text, " ")
    return Catalog(sha=sha, phash=phash, phash256=phash256, thumbnail=thumbnail, grid=grid, category=category,
                   titles=titles, source=source, copy=copy, kind=kind)


def direct_title_match(config: DedupeConfig, evidence: Evidence, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether same-title pairs ``(a[i], b[i])`` pass the title rule's picture checks, pair by pair."""
    return ((hamming(evidence.phash[a], evidence.phash[b]) <= config.title_near_threshold)
            & (hamming_words(evidence.phash256[a], evidence.phash256[b]) <= config.near_verify_bits)
            & (max_level_difference(evidence.thumbnail[a], evidence.thumbnail[b]) <= config.title_colour_tolerance))


def brute_force(config: DedupeConfig, evidence: Evidence, queries: np.ndarray) -> tuple[list, list]:
    """For each query, all products a removal rule matches with it, and all its leak partners,
    by comparing it with every product (the rules restated pair by pair)."""
    usable_title = usable_keys(evidence.title, np.ones(len(evidence), bool))
    usable_sha = usable_keys(evidence.sha256, np.ones(len(evidence), bool))
    usable_grid = usable_keys(evidence.grid, np.ones(len(evidence), bool))
    removal, leak = [], []
    for q in queries:
        everyone = np.arange(len(evidence))
        sha = usable_sha[q] & usable_sha & (evidence.sha256 == evidence.sha256[q])
        title = usable_title[q] & usable_title & (evidence.title == evidence.title[q])
        bits = hamming(evidence.phash, evidence.phash[q])
        near = bits <= config.near_threshold
        near[near] &= hamming_words(evidence.phash256[near], evidence.phash256[q][None]) <= config.near_verify_bits
        title_image = title & (bits <= config.title_near_threshold)
        title_image[title_image] &= direct_title_match(config, evidence, np.nonzero(title_image)[0],
                                                       np.full(int(title_image.sum()), q))
        candidates = (sha | title_image) & ~disagreement(evidence.labels, np.full(len(evidence), q),
                                                          everyone).any(axis=1)
        candidates[q] = False
        removal.append(np.nonzero(candidates)[0])
        grid = usable_grid[q] & usable_grid & (evidence.grid == evidence.grid[q])
        linked = sha | title | near | grid
        linked[q] = False
        leak.append(np.nonzero(linked)[0])
    return removal, leak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="synthetic products")
    parser.add_argument("--sample", type=int, default=300, help="products checked against brute force")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = DedupeConfig("memory", "none", progress=False)
    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}

    def timed(step: str, fn: Callable[[], Any]) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        seconds[step], cpu_seconds[step] = time.perf_counter() - start, time.process_time() - cpu
        print(step, f"{seconds[step]:.1f} s wall, {cpu_seconds[step]:.1f} s CPU, peak {peak_rss_mb():.0f} MB",
              file=sys.stderr, flush=True)
        return out

    catalog = timed("generate", lambda: generate(args.rows, args.seed))
    rss_generated = peak_rss_mb()
    evidence = timed("title_keys", lambda: Evidence(
        sha256=catalog.sha, title=equal_value_ids(catalog.titles), grid=catalog.grid, phash=catalog.phash,
        phash256=catalog.phash256, thumbnail=catalog.thumbnail, detailed=np.ones(args.rows, dtype=bool),
        labels=catalog.category[:, None]))
    matches = timed("match", lambda: match(config, evidence))
    # Kept-product policy by id alone: the synthetic products have no pixels or metadata to rank.
    groups = timed("group", lambda: build_groups(matches, np.arange(args.rows)))
    steps = ("title_keys", "match", "group")
    rss_end = peak_rss_mb()

    recall = {}
    for kind in PLANTED:
        s, c = catalog.source[catalog.kind == kind], catalog.copy[catalog.kind == kind]
        together = groups.kept_index[s] == groups.kept_index[c]
        recall[kind] = {"planted": len(c), "removed_together": float(together.mean()) if len(c) else 1.0,
                        "same_leak_group": float((groups.split_index[s] == groups.split_index[c]).mean())}
    removed = np.nonzero(~groups.kept)[0]
    kept_of = groups.kept_index[removed]
    direct = np.zeros(len(removed), dtype=bool)
    sha_rule = groups.rule[removed] == "sha256"
    direct[sha_rule] = evidence.sha256[removed[sha_rule]] == evidence.sha256[kept_of[sha_rule]]
    title_rule = ~sha_rule
    a, b = removed[title_rule], kept_of[title_rule]
    direct[title_rule] = (evidence.title[a] == evidence.title[b]) & direct_title_match(config, evidence, a, b)
    direct &= ~disagreement(evidence.labels, removed, kept_of).any(axis=1)

    rng = np.random.default_rng(args.seed + 1)
    half = args.sample // 2
    queries = np.unique(np.concatenate([rng.choice(catalog.copy, half, replace=False),
                                        rng.choice(args.rows, args.sample - half, replace=False)]))
    start = time.perf_counter()
    truth_removal, truth_leak = brute_force(config, evidence, queries)
    brute_seconds = time.perf_counter() - start
    pairs = set(zip(matches.removal.left.tolist(), matches.removal.right.tolist()))
    expected = sum(len(t) for t in truth_removal)
    found = sum((min(q, j), max(q, j)) in pairs for q, t in zip(queries.tolist(), truth_removal) for j in t.tolist())
    leak_expected = sum(len(t) for t in truth_leak)
    leak_found = sum(int(np.sum(groups.split_index[t] == groups.split_index[q])) for q, t in zip(queries, truth_leak))
    print(json.dumps({
        "rows": args.rows, "seconds": seconds, "cpu_seconds": cpu_seconds,
        "matching_and_grouping_seconds": sum(seconds[s] for s in steps),
        "matching_and_grouping_cpu_seconds": sum(cpu_seconds[s] for s in steps),
        "peak_rss_mb": {"after_generation": rss_generated, "end": rss_end},
        "removed": len(removed), "leak_groups": int(np.sum((groups.split_index == np.arange(args.rows))
                                                                & (groups.split_size > 1))),
        "largest_leak_group": int(groups.split_size.max()), "label_conflicts": int(groups.label_conflict.sum()),
        "too_common_keys": matches.shared_keys, "max_shared_key": MAX_SHARED_KEY,
        "removal_recall": recall,
        "direct": {"removed": len(removed), "match_kept_directly": int(direct.sum())},
        "brute_force": {"queries": len(queries), "seconds": brute_seconds,
                        "removal_candidates": expected,
                        "removal_candidate_recall": found / expected if expected else 1.0,
                        "leak_partners": leak_expected,
                        "leak_recall": leak_found / leak_expected if leak_expected else 1.0,
                        "projected_all_pairs_seconds": brute_seconds / len(queries) * args.rows / 2},
        "goals": {"seconds": 600, "peak_rss_mb": 8192},
    }, indent=2))


if __name__ == "__main__":
    main()
