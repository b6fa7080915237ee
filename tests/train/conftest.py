"""A tiny but real tfrecord-build output for training tests.

Written with the shared contracts (FeatureSpec.serialize, Vocabulary.save, PieceVectors.save, the
manifest's digests), a SentencePiece model trained on the titles and a gensim Doc2Vec trained on
their pieces, so the trainer reads exactly what the build stage writes. Classes are learnable from
both the image (colour and stripe pattern) and the title (article words), so a few epochs move the
loss.
"""

from __future__ import annotations

import random

import pytest

from ecom_kfp.contracts.layouts import DatasetLayout
from tests.train.helpers import LEAVES, product_image, write_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    """A shared, read-only tiny dataset (copy it before breaking it)."""
    return write_dataset(tmp_path_factory.mktemp("tiny-dataset") / "dataset")


@pytest.fixture()
def shop_product():
    """``shop_product(leaf, size) -> (jpeg bytes, raw title)`` of a leaf class, as a shop would send it."""
    rng = random.Random(7)

    def make(leaf: int, size: tuple[int, int]) -> tuple[bytes, str]:
        _, colour, words = LEAVES[leaf]
        return product_image(colour, leaf, rng, size), f"Puma Men Black {words.upper()}"

    return make
