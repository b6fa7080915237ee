"""The duplicate rules: each turns per-product keys or hashes into match edges.

Key rules (identical SHA-256, identical grid key, identical normalised title) link products with
equal keys; pair rules link products whose pHashes are within a Hamming threshold (and pass its
checks) or whose image embeddings are within the cosine threshold. What an edge may do, remove a
product or only keep it in its neighbour's split, is each rule's role (:data:`REMOVAL_RULES`; measured on
myntra-dev, see :mod:`ecom_kfp.dedupe`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecom_kfp.dedupe.colour_thumbnail import max_level_difference
from ecom_kfp.dedupe.embedding import similar_pairs
from ecom_kfp.dedupe.near_search import near_item_pairs, run_pairs
from ecom_kfp.dedupe.phash import hamming, hamming_words

#: Rule names. A removal names the most certain rule that links the removed product to its kept
#: one directly, in :data:`REMOVAL_RULES` order.
SHA256, PHASH_TITLE, PHASH, EMBEDDING, GRID, TITLE = "sha256", "phash_title", "phash", "embedding", "grid", "title"
#: Rules whose matches may remove a product (``phash`` and ``embedding`` only with ``--near-removes``);
#: every rule's matches join leak groups.
REMOVAL_RULES = (SHA256, PHASH_TITLE, PHASH, EMBEDDING)
#: A key (image bytes, grid key, title) shared by more products than this is a placeholder picture
#: or a generic title, not evidence that they are one product or near-copies: it links nothing.
MAX_SHARED_KEY = 100


@dataclass(frozen=True)
class RuleEdges:
    """Match edges (item index pairs) found by one rule, with the rule's distance per edge."""

    rule: str
    left: np.ndarray
    right: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.left)


def equal_value_ids(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Integer id per string value (equal values, equal ids); -1 for null or empty strings."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    encoded = pc.dictionary_encode(array.cast(pa.string()))
    ids = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    empty = pc.equal(encoded.dictionary, "").to_numpy(zero_copy_only=False)
    return np.where((ids >= 0) & empty[np.maximum(ids, 0)] if len(empty) else False, -1, ids)


def usable_keys(keys: np.ndarray, valid: np.ndarray, limit: int = MAX_SHARED_KEY) -> np.ndarray:
    """``valid`` items whose key is shared by at most ``limit`` valid items (see :data:`MAX_SHARED_KEY`)."""
    usable = valid & (keys >= 0)
    _, inverse, counts = np.unique(keys[usable], return_inverse=True, return_counts=True)
    out = np.zeros(len(keys), dtype=bool)
    out[np.nonzero(usable)[0]] = counts[inverse.ravel()] <= limit
    return out


def key_edges(rule: str, keys: np.ndarray, valid: np.ndarray) -> RuleEdges:
    """Link every item to the first item with the same key (a star per key; distance 0).

    Args:
        rule: Rule name for the edges.
        keys: One integer key per item.
        valid: Items that take part (others have no key, e.g. an empty title).
    """
    items = np.nonzero(valid)[0]
    order = items[np.argsort(keys[items], kind="stable")]
    sorted_keys = keys[order]
    run_start = np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]) if len(order) else np.zeros(0, bool)
    first = order[np.maximum.accumulate(np.where(run_start, np.arange(len(order)), 0))]
    member = ~run_start
    return RuleEdges(rule=rule, left=first[member], right=order[member],
                     distance=np.zeros(int(member.sum()), dtype=np.float64))


def key_pairs(keys: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``left < right`` of ``valid`` items with equal keys (quadratic per key: cap keys first)."""
    items = np.nonzero(valid)[0]
    order = items[np.argsort(keys[items], kind="stable")]
    left, right = run_pairs(keys[order], order)
    return np.minimum(left, right), np.maximum(left, right)


#: Candidate pairs verified at a time by :meth:`NearRule.check` (their gathered thumbnails: ~10 MB).
CHECK_BLOCK = 1 << 13


@dataclass(frozen=True)
class NearRule:
    """The pHash rule: 64-bit hashes to search, and the checks a candidate pair must pass.

    pHash sees only luma at low frequency, so on catalogs of objects on white backgrounds the
    64-bit hash alone confuses different products of similar outline, and one item in other
    colours or shades. A candidate within ``threshold`` bits is a match only if the finer 256-bit
    pHash is within ``verify_bits`` and every value of the 8x8 YCbCr colour thumbnails within
    ``colour_tolerance`` levels (0..255): resizes and re-encodes keep the colour of every region
    and pass both checks; a recoloured garment or another lipstick shade does not.
    """

    phashes: np.ndarray  # (n,) uint64
    phashes256: np.ndarray  # (n, 4) uint64
    thumbnails: np.ndarray  # (n, 3 * side * side) uint8 YCbCr colour thumbnails
    threshold: int
    verify_bits: int
    colour_tolerance: int

    def check(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which item pairs match, and their 64-bit pHash distances.

        The pairs are checked :data:`CHECK_BLOCK` at a time: the hashes and thumbnails gathered
        for all candidate pairs at once would cost ~1 KB per pair, as much as the catalog's arrays.
        """
        bits = hamming(self.phashes[left], self.phashes[right])
        ok = bits <= self.threshold
        for start in range(0, len(left), CHECK_BLOCK):
            a, b = left[start:start + CHECK_BLOCK], right[start:start + CHECK_BLOCK]
            block = ok[start:start + CHECK_BLOCK]  # a view: the checks below narrow ``ok`` in place
            block &= hamming_words(self.phashes256[a], self.phashes256[b]) <= self.verify_bits
            block &= max_level_difference(self.thumbnails[a], self.thumbnails[b]) <= self.colour_tolerance
        return ok, bits


#: Rows per block when digesting signatures: a block's words (~15 MB) stay in cache, and no full
#: copy of the thumbnails is ever made.
DIGEST_BLOCK = 1 << 16


def _signature_words(near: NearRule, items: np.ndarray | slice) -> np.ndarray:
    """``(len(items), words)`` uint64: each item's 64-bit pHash, 256-bit pHash and thumbnail bytes."""
    thumbnails = near.thumbnails[items]
    pad = -thumbnails.shape[1] % 8
    if pad:
        thumbnails = np.pad(thumbnails, ((0, 0), (0, pad)))
    return np.concatenate([near.phashes[items, None] if isinstance(items, np.ndarray) else near.phashes[items][:, None],
                           near.phashes256[items], np.ascontiguousarray(thumbnails).view(np.uint64)], axis=1)


def signature_digests(near: NearRule, items: np.ndarray) -> np.ndarray:
    """A 64-bit digest of each item's hashes and thumbnail (equal signatures, equal digests).

    A random linear map of the words (mod 2**64), then a multiply-xorshift finish: not
    collision-free for crafted input, which is why :func:`phash_edges` compares collapsed items in full.
    """
    out = np.empty(len(items), dtype=np.uint64)
    multipliers = None
    with np.errstate(over="ignore"):
        for start in range(0, len(items), DIGEST_BLOCK):
            block = items[start:start + DIGEST_BLOCK]
            # The usual case, every item valid: a slice reads the rows without a fancy-index copy.
            contiguous = len(block) and block[-1] - block[0] == len(block) - 1
            words = _signature_words(near, slice(int(block[0]), int(block[-1]) + 1) if contiguous else block)
            if multipliers is None:
                multipliers = np.random.default_rng(0).integers(0, 2**63, words.shape[1], dtype=np.uint64) * 2 + 1
            digest = words @ multipliers
            digest ^= digest >> np.uint64(31)
            digest *= np.uint64(0x9E3779B97F4A7C15)
            out[start:start + DIGEST_BLOCK] = digest ^ (digest >> np.uint64(29))
    return out


def phash_edges(near: NearRule, valid: np.ndarray, progress: bool) -> RuleEdges:
    """Link ``valid`` items whose hashes are near (multi-index search) and pass ``near.check``.

    Items with identical hashes and colour thumbnails pass every check with each other; they are
    collapsed to one representative (linked in a star) so every other pair is checked exactly
    once between representatives, whatever the input order. They are found by a 64-bit digest of
    the signature and then compared in full, so a digest collision never links different items.
    """
    items = np.nonzero(valid)[0]
    _, first, inverse = np.unique(signature_digests(near, items), return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    same = np.nonzero(first[inverse] != np.arange(len(items)))[0]
    equal = np.all(_signature_words(near, items[same]) == _signature_words(near, items[first[inverse[same]]]),
                   axis=1)
    representatives = np.sort(np.concatenate([items[first], items[same[~equal]]]))  # disjoint sets
    same = same[equal]
    pairs = near_item_pairs(near.phashes[representatives], near.threshold, progress=progress)
    left, right = representatives[pairs.left], representatives[pairs.right]
    ok, bits = near.check(left, right)
    return RuleEdges(rule=PHASH, left=np.concatenate([items[first[inverse[same]]], left[ok]]),
                     right=np.concatenate([items[same], right[ok]]),
                     distance=np.concatenate([np.zeros(len(same)), bits[ok].astype(np.float64)]))


@dataclass(frozen=True)
class EmbeddingRule:
    """L2-normalised image embeddings with cosine similarity ``>= threshold``.

    Its distance is ``1 - cosine similarity`` (0 = same direction).
    """

    vectors: np.ndarray  # (n, D) float32, unit rows
    threshold: float


def embedding_edges(rule: EmbeddingRule, progress: bool) -> RuleEdges:
    """Link items whose embeddings are within the cosine threshold (exact blocked search)."""
    left, right, similarity = similar_pairs(rule.vectors, rule.threshold, progress=progress)
    return RuleEdges(rule=EMBEDDING, left=left, right=right, distance=1.0 - similarity.astype(np.float64))
