"""Configuration of the dedupe stage, shared by the CLI and the KFP component."""

from __future__ import annotations

from dataclasses import dataclass

from ecom_kfp.config_checks import require
from ecom_kfp.dedupe.colour_thumbnail import MAX_LEVELS
from ecom_kfp.dedupe.grid_hash import DEFAULT_GRID

#: pHash thresholds beyond this match unrelated pictures, and the exact index grows steeply.
MAX_NEAR_THRESHOLD = 16


@dataclass
class DedupeConfig:
    """What ``ecom-kfp dedupe`` / ``hash_dedupe_op`` run on.

    Attributes:
        products_uri: Ingest output (``IngestLayout`` root: ``products.parquet`` + ``images/``).
        out_uri: Where the ``DedupeLayout`` is written (local directory or ``gs://`` prefix).
        title_rule: Identical non-empty normalised titles are duplicates (e-CLIP).
        sha256_rule: Byte-identical images are duplicates.
        grid_rule: Equal e-CLIP colour-grid keys (same picture, same size) are duplicates.
        phash_rule: Perceptual hashes within ``near_threshold`` bits are duplicates.
        near_threshold: Maximum pHash Hamming distance of near duplicates.
        near_verify_bits: A pHash match also needs the 256-bit (16x16) pHash within this many
            bits; 256 turns the check off.
        near_colour_tolerance: A pHash match also needs every value of the two images' 8x8
            YCbCr colour thumbnails within this many levels (0..255); 255 turns the check off.
            Resizes and re-encodes stay within about 7 levels on myntra; the same studio shot
            of another colour or shade mostly differs by more.
        embedding_model: Keras ``.keras`` file or SavedModel directory (local or ``gs://``)
            mapping ``[N, S, S, 3]`` float32 0..255 images to vectors; empty = embedding rule off.
        embedding_threshold: Minimum cosine similarity of near-duplicate embeddings.
        embedding_batch_size: Images per model call.
        grid_cells: Side of the colour grid (e-CLIP uses 5).
        workers: Hashing processes; 0 = one per CPU.
        chunk_size: Images per unit of work sent to a hashing process.
        sample_groups: Duplicate groups shown in ``samples.html``.
        progress: Show tqdm progress bars.
    """

    products_uri: str
    out_uri: str
    title_rule: bool = True
    sha256_rule: bool = True
    grid_rule: bool = True
    phash_rule: bool = True
    near_threshold: int = 6
    near_verify_bits: int = 20
    near_colour_tolerance: int = 8
    embedding_model: str = ""
    embedding_threshold: float = 0.97
    embedding_batch_size: int = 64
    grid_cells: int = DEFAULT_GRID
    workers: int = 0
    chunk_size: int = 512
    sample_groups: int = 24
    progress: bool = True

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
            (0 <= self.near_verify_bits <= 256, "--near-verify-bits", self.near_verify_bits,
             "must be in [0, 256]"),
            (0 <= self.near_colour_tolerance <= MAX_LEVELS, "--near-colour-tolerance",
             self.near_colour_tolerance, f"must be in [0, {MAX_LEVELS}]"),
            (-1.0 <= self.embedding_threshold <= 1.0, "--embedding-threshold", self.embedding_threshold,
             "must be a cosine similarity in [-1, 1]"),
            (self.embedding_batch_size >= 1, "--embedding-batch-size", self.embedding_batch_size, "must be >= 1"),
            (self.grid_cells >= 1, "--grid-cells", self.grid_cells, "must be >= 1"),
            (self.workers >= 0, "--workers", self.workers, "must be >= 0"),
            (self.chunk_size >= 1, "--chunk-size", self.chunk_size, "must be >= 1"),
            (self.sample_groups >= 0, "--sample-groups", self.sample_groups, "must be >= 0"),
        ])
