"""Configuration of the dedupe stage, shared by the CLI and the KFP component."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ecom_kfp.dedupe.colour_thumbnail import MAX_LEVELS
from ecom_kfp.dedupe.grid_hash import DEFAULT_GRID
from ecom_kfp.settings import require, setting

#: pHash thresholds beyond this match unrelated pictures, and the exact index grows steeply.
MAX_NEAR_THRESHOLD = 16
#: Google Merchant Center's variant attributes (plus myntra's ``baseColour``): products that differ
#: in one of them are different products, even when they share a photo.
DEFAULT_VARIANT_COLUMNS = ("color", "colour", "base_colour", "size", "pattern", "material", "age_group", "gender")


@dataclass
class DedupeConfig:
    """What ``ecom-kfp dedupe`` and ``dedupe_op`` run on; each field's help is its documentation."""

    products_uri: str = setting(flag="--products", metavar="URI",
                                help="ingest output directory or gs:// prefix (holds products.parquet and images/)")
    out_uri: str = setting(flag="--out", metavar="URI", help="output directory or gs:// prefix for the dedupe layout")
    sha256_rule: bool = setting(True, help="byte-identical images remove a product (unless the labels disagree)")
    phash_title_rule: bool = setting(
        True, help="the same normalised title with images within --title-near-threshold and "
                   "--title-colour-tolerance removes a product (unless the labels disagree)")
    phash_rule: bool = setting(True, help="near-identical images (pHash search) join leak groups")
    title_rule: bool = setting(True, help="identical non-empty normalised titles join leak groups (never remove)")
    grid_rule: bool = setting(True, help="equal e-CLIP colour-grid keys join leak groups (never remove)")
    near_removes: bool = setting(
        False, help="near-identical images alone (within --near-threshold and the colour check) also remove a "
                    "product; off by default: on myntra-dev most such pairs are different shades or colours")
    near_threshold: int = setting(6, metavar="BITS", help="max pHash Hamming distance of near-duplicate images")
    near_verify_bits: int = setting(
        20, metavar="BITS", help="a pHash match also needs the finer 256-bit pHash within this many bits (256 = off)")
    near_colour_tolerance: int = setting(
        8, metavar="LEVELS",
        help="a pHash removal also needs every value of the two 8x8 YCbCr colour thumbnails within this many "
             "levels (0..255; 255 = off): resizes and re-encodes stay within about 7 levels on myntra, the "
             "same studio shot of another colour or shade mostly differs by more")
    title_near_threshold: int = setting(
        6, metavar="BITS", help="max pHash Hamming distance of two same-title images for a removal (they also need "
                                "the 256-bit pHash within --near-verify-bits)")
    title_colour_tolerance: int = setting(
        8, metavar="LEVELS", help="max colour-thumbnail difference of two same-title images for a removal: looser "
                                  "values remove different ties and sunglasses of one brand shot alike")
    variant_columns: list[str] = setting(
        factory=lambda: list(DEFAULT_VARIANT_COLUMNS), metavar="NAME,...",
        help="catalog (source) columns that tell product variants apart; products whose values differ are "
             "never removed as copies of each other (names match case- and punctuation-insensitively; "
             "the category path is always compared)")
    embedding_model: str = setting(
        "", metavar="URI",
        help="Keras .keras file or SavedModel directory (local or gs://) mapping float32 [N,S,S,3] images in "
             "0..255 to vectors; turns on the embedding rule (empty = off)")
    embedding_model_sha256: str = setting(
        "", metavar="HEX",
        help="SHA-256 the embedding model must have (of the .keras file; of a SavedModel directory, the content "
             "digest of its files as ecom_kfp.contracts.digests computes it); checked before the model is loaded. "
             "A SavedModel runs its own graph: pin models you did not write")
    embedding_threshold: float = setting(0.97, metavar="COS", help="min cosine similarity of near-duplicate embeddings")
    embedding_batch_size: int = setting(64, metavar="N", help="images per embedding model call")
    grid_cells: int = setting(DEFAULT_GRID, metavar="N", help="side of the colour grid (e-CLIP uses 5)")
    workers: int = setting(0, metavar="N", help="image hashing processes; 0 = one per CPU")
    chunk_size: int = setting(512, metavar="N", help="images per unit of work sent to a hashing process")
    sample_removals: int = setting(40, metavar="N", help="random removals shown side by side in samples.html")
    sample_seed: int = setting(0, metavar="N", help="seed of the random choice of removals shown")
    progress: bool = setting(True, flag="--no-progress", help="show progress bars")

    def validate(self) -> None:
        """Fail fast on bad settings, naming the CLI flag and the value.

        Raises:
            ValueError: a setting is out of range.
        """
        require([
            (bool(self.products_uri), "--products", self.products_uri, "must be given"),
            (bool(self.out_uri), "--out", self.out_uri, "must be given"),
            (self.out_uri.rstrip("/") != self.products_uri.rstrip("/"), "--out", self.out_uri,
             "must differ from --products (it would overwrite the input products.parquet)"),
            (0 <= self.near_threshold <= MAX_NEAR_THRESHOLD, "--near-threshold", self.near_threshold,
             f"must be in [0, {MAX_NEAR_THRESHOLD}]"),
            (0 <= self.title_near_threshold <= 64, "--title-near-threshold", self.title_near_threshold,
             "must be in [0, 64]"),
            (0 <= self.title_colour_tolerance <= MAX_LEVELS, "--title-colour-tolerance",
             self.title_colour_tolerance, f"must be in [0, {MAX_LEVELS}]"),
            (0 <= self.near_verify_bits <= 256, "--near-verify-bits", self.near_verify_bits,
             "must be in [0, 256]"),
            (0 <= self.near_colour_tolerance <= MAX_LEVELS, "--near-colour-tolerance",
             self.near_colour_tolerance, f"must be in [0, {MAX_LEVELS}]"),
            (not self.embedding_model_sha256 or bool(self.embedding_model), "--embedding-model-sha256",
             self.embedding_model_sha256, "needs --embedding-model"),
            (not self.embedding_model_sha256 or re.fullmatch(r"[0-9a-fA-F]{64}", self.embedding_model_sha256)
             is not None, "--embedding-model-sha256", self.embedding_model_sha256, "must be 64 hex digits"),
            (-1.0 <= self.embedding_threshold <= 1.0, "--embedding-threshold", self.embedding_threshold,
             "must be a cosine similarity in [-1, 1]"),
            (self.embedding_batch_size >= 1, "--embedding-batch-size", self.embedding_batch_size, "must be >= 1"),
            (self.grid_cells >= 1, "--grid-cells", self.grid_cells, "must be >= 1"),
            (self.workers >= 0, "--workers", self.workers, "must be >= 0"),
            (self.chunk_size >= 1, "--chunk-size", self.chunk_size, "must be >= 1"),
            (self.sample_removals >= 0, "--sample-removals", self.sample_removals, "must be >= 0"),
        ])
