"""Hash-dedupe stage: exact and near-duplicate products grouped, one kept per group.

Rules (each switchable): identical normalised titles, identical image bytes (SHA-256), e-CLIP's
colour-grid key, and 64-bit DCT perceptual hashes within a Hamming threshold (found with an exact
multi-index search, not all pairs; checked with a finer pHash and colour thumbnails), plus
optionally image-embedding cosine similarity (exact blocked search) when an embedding model is
given. Matches merge into groups with union-find;
``group_id`` lets the TFRecord build keep each group inside one split.
"""

from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.dedupe.stage import DedupeReport, run

__all__ = ["DedupeConfig", "DedupeReport", "run"]
