"""Hash-dedupe stage: remove products that are copies of others; group near-copies for the splits.

Two outputs with two precisions (measured on myntra-dev, see ``docs/dedupe.md`` and
``benchmarks/README.md``):

- **Removal** (``group_id``, ``duplicates.parquet``): only the same product, on image evidence,
  and never across a disagreement of the catalog's labels (category path, ``--variant-columns``
  such as colour or gender).

  ==============  =====================================================  =========================
  rule            evidence                                               role
  ==============  =====================================================  =========================
  ``sha256``      byte-identical images                                  removal + leak group
  ``phash_title`` same normalised title and near-identical images        removal + leak group
                  (pHash <= 6 bits, 256-bit pHash <= 20, colour <= 8)
  ``phash``       near-identical images alone                            leak group (removal with
                                                                         ``--near-removes``)
  ``embedding``   image embeddings within the cosine threshold           as ``phash``
  ``title``       identical normalised titles alone                      leak group only
  ``grid``        equal e-CLIP colour-grid keys alone                    leak group only
  ==============  =====================================================  =========================

  Why: at the old defaults (every rule removing, one union-find) 610 of myntra-dev's 5,248
  products were removed with a precision proxy of 0.39 (title 0.37, grid 0.22, transitive 0.14,
  phash 0.20). Near-identical pictures alone are mostly other shades of one cosmetic or one tie
  in another colour (6 of 13 such pairs agree on gender, article type and colour). Title plus
  picture within looser thresholds (12 bits, 32 colour levels) passed the metadata proxy, but by
  eye at least 10 of those 24 removals were different sunglasses, shirts, sandals or bags of one
  brand photographed alike, so the title rule uses the near-image thresholds: title agreement is an
  extra requirement, not a licence to loosen.

- **Leak grouping** (``split_group``): generous. Every rule's matches, unioned; the TFRecord
  build keeps each leak group inside one split.

Removal groups are formed around kept products (no chains): a removed product always matches its
kept product directly. Byte-identical images of products whose category paths differ are label
conflicts: both kept, marked ``label_conflict``, listed in ``report.json`` and ``samples.html``.
Keys shared by more than 100 products (placeholder pictures, generic titles) link nothing.
Matching and grouping work on numpy arrays of hashes and keys, so one process handles tens of
millions of products (``benchmarks/bench_dedupe_scale.py``).
"""

from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.dedupe.stage import DedupeReport, run

__all__ = ["DedupeConfig", "DedupeReport", "run"]
