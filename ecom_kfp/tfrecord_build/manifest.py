"""``manifest.json``: what a dataset holds and how it was made.

Keys (the trainer reads ``feature_spec`` and ``counts``):

- ``feature_spec``: :meth:`~ecom_kfp.contracts.features.FeatureSpec.to_dict`.
- ``counts``: per split, ``{"total": records, "level_<k>": {class name: records}}`` (every class
  of the vocabulary, zeros included).
- ``folding``: the ``min_class_count``, and per level the classes kept, the folded classes with
  their training counts, and per split how many records are ``other`` and why.
- ``splits``: the fractions, stratification and salt used.
- ``text``: SentencePiece vocabulary size (requested and actual), Doc2Vec settings (training
  ``doc2vec_epochs`` and the ``doc2vec_infer_epochs`` of the records' title vectors), and the
  titles both trained on: ``training_titles`` of ``train_products`` (``sampled`` when
  ``text_sample`` bounded them).
- ``taxonomy``: the mapping files and how many products they mapped, or ``null``.
- ``shards``: shard files per split, the write pieces (``num_shards``) that wrote them, the target
  size and the estimated record size the files were cut with.
- ``input``: the ``--products`` URI; ``versions``: library versions.
- ``digests``: relative path -> SHA-256 of every other file of the dataset (shards, labels, text
  models, rejects), which train and evaluate verify before reading
  (:mod:`ecom_kfp.contracts.digests`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from ecom_kfp.contracts import digests
from ecom_kfp.contracts.features import MANIFEST_COUNTS, MANIFEST_KEY
from ecom_kfp.contracts.labels import Vocabulary

FEATURE_SPEC = MANIFEST_KEY
COUNTS = MANIFEST_COUNTS
DIGESTS = digests.DIGESTS_KEY
LIBRARIES = ("ecom-kfp", "tensorflow", "tensorflow-text", "sentencepiece", "gensim", "pillow", "numpy", "pyarrow")


def versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the records and the text models."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def split_counts(records: int, class_counts: Sequence[Counter[int]], vocabularies: Sequence[Vocabulary]) -> dict[str, Any]:
    """``{"total": n, "level_<k>": {class: n}}`` of one split."""
    counts: dict[str, Any] = {"total": records}
    for vocabulary, per_id in zip(vocabularies, class_counts, strict=True):
        counts[f"level_{vocabulary.level}"] = {name: per_id.get(i, 0) for i, name in enumerate(vocabulary.classes)}
    return counts


def dataset_digests(root: str) -> dict[str, str]:
    """SHA-256 of every file of the dataset at ``root`` but ``manifest.json`` and ``report.json``."""
    return digests.tree_digests(root)
