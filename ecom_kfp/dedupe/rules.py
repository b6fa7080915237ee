"""The duplicate rules: each turns per-product keys or hashes into match edges.

Key rules (identical SHA-256, identical grid key, identical normalised title) link products with
equal keys; the pHash rule links products whose hashes are within the Hamming threshold. Edges of
all rules go into one union-find (see :mod:`ecom_kfp.dedupe.grouping`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecom_kfp.dedupe.near_search import near_edges

#: Rule names, in the order used to say why a dropped product matches its kept one (the most
#: certain evidence first: identical bytes, then identical coarse picture, then near picture,
#: then title alone).
SHA256, GRID, PHASH, TITLE = "sha256", "grid", "phash", "title"
RULES = (SHA256, GRID, PHASH, TITLE)
#: A dropped product that matches no rule with the kept product itself, only other group members.
TRANSITIVE = "transitive"


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


def colours_agree(colour: np.ndarray, left: np.ndarray, right: np.ndarray, tolerance: int) -> np.ndarray:
    """Whether the colour grids of item pairs differ by at most ``tolerance`` digits in every cell.

    pHash sees only luma at low frequency, so on catalogs of objects on white backgrounds it
    confuses different products of similar outline (and the same item in another colour).
    Re-encodes, resizes and slight colour shifts keep every grid cell within one digit.
    """
    if len(left) == 0:
        return np.zeros(0, dtype=bool)
    diff = np.abs(colour[left].astype(np.int16) - colour[right].astype(np.int16))
    return diff.max(axis=1) <= tolerance


def phash_edges(hashes: np.ndarray, colour: np.ndarray, valid: np.ndarray, threshold: int,
                colour_tolerance: int, progress: bool) -> RuleEdges:
    """Link ``valid`` items whose perceptual hashes are within ``threshold`` bits (multi-index
    search) and whose colour grids agree within ``colour_tolerance`` (see :func:`colours_agree`)."""
    items = np.nonzero(valid)[0]
    pairs = near_edges(hashes[items], threshold, progress=progress)
    left, right = items[pairs.left], items[pairs.right]
    agree = colours_agree(colour, left, right, colour_tolerance)
    return RuleEdges(rule=PHASH, left=left[agree], right=right[agree],
                     distance=pairs.distance[agree].astype(np.float64))
