"""The in-graph title tokenizer (SentencePiece ids plus hashed whole words, word bigrams and character
n-grams), and the
piece vectors that initialise its embedding: data only, verified, never unpickled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ecom_kfp.contracts.digests import tree_digests
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.tfrecord_build.text import PieceVectors, PieceVectorsError, sentencepiece_processor
from ecom_kfp.train.data import DatasetError, TrainingData
from ecom_kfp.train.text import MAX_CHAR_GRAMS, TitleTokenizer, piece_embeddings


def test_word_ids_hash_words_then_bigrams_ignoring_case_and_punctuation(tiny_dataset: DatasetLayout) -> None:
    tokenizer = TitleTokenizer(tiny_dataset.spm_model, max_tokens=6, word_buckets=1000)
    ids = tokenizer.word_ids(tf.constant(["Navy-Blue Shirt", "NAVY blue  shirt!", "", "a b c d e"])).numpy()
    buckets = tf.strings.to_hash_bucket_fast(["navy", "blue", "shirt", "navy blue", "blue shirt"], 1000).numpy() + 1
    np.testing.assert_array_equal(ids[0], np.append(buckets, 0))
    np.testing.assert_array_equal(ids[1], ids[0])
    np.testing.assert_array_equal(ids[2], np.zeros(6))
    assert ids.dtype == np.int32 and (ids[3] > 0).all()  # 5 words + 4 bigrams, cut to 6


def test_char_ids_hash_2_to_4_grams_of_space_padded_words_ignoring_case_and_punctuation(
        tiny_dataset: DatasetLayout) -> None:
    tokenizer = TitleTokenizer(tiny_dataset.spm_model, max_tokens=6, char_buckets=1000)
    ids = tokenizer.char_ids(tf.constant(["Tee-SHIRT", "tee shirt!", "", "x " * 200])).numpy()
    grams = [" t", "te", "ee", "e ", " te", "tee", "ee ", " tee", "tee ",
             " s", "sh", "hi", "ir", "rt", "t ", " sh", "shi", "hir", "irt", "rt ", " shi", "shir", "hirt", "irt "]
    buckets = tf.strings.to_hash_bucket_fast(grams, 1000).numpy() + 1
    assert ids.shape == (4, MAX_CHAR_GRAMS) and ids.dtype == np.int32
    np.testing.assert_array_equal(ids[0, : len(grams)], buckets)
    assert not ids[0, len(grams):].any()
    np.testing.assert_array_equal(ids[1], ids[0])
    assert not ids[2].any()
    assert (ids[3] > 0).all()  # 200 words of 3 grams each, cut to MAX_CHAR_GRAMS


def test_model_inputs_add_hash_ids_only_when_enabled(tiny_dataset: DatasetLayout) -> None:
    titles = tf.constant(["Navy Blue Shirt"])
    assert set(TitleTokenizer(tiny_dataset.spm_model, 8).model_inputs(titles)) == {"title_tokens"}
    assert set(TitleTokenizer(tiny_dataset.spm_model, 8, 16).model_inputs(titles)) == {"title_tokens", "title_words"}
    assert set(TitleTokenizer(tiny_dataset.spm_model, 8, 0, 16).model_inputs(titles)) == {"title_tokens", "title_chars"}


class _WritesAFile:
    """What a hostile pickle does when loaded: run code (here, write a marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_dataset(tiny_dataset: DatasetLayout, tmp_path: Path, *,
                     update_digests: bool) -> tuple[DatasetLayout, Path]:
    """A copy of the dataset whose ``text/piece_vectors.npy`` is an object array holding a code-running pickle."""
    root = tmp_path / "dataset"
    shutil.copytree(tiny_dataset.root, root)
    layout, marker = DatasetLayout(str(root)), tmp_path / "payload-ran"
    with open(layout.piece_vectors, "wb") as fh:
        np.save(fh, np.array([_WritesAFile(str(marker))], dtype=object), allow_pickle=True)
    if update_digests:  # a writer who can replace the file can usually rewrite the manifest too
        manifest = json.loads(Path(layout.manifest).read_text())
        manifest["digests"] = tree_digests(str(root))
        Path(layout.manifest).write_text(json.dumps(manifest))
    return layout, marker


def test_a_replaced_text_model_is_refused_by_its_digest_before_it_is_read(tiny_dataset: DatasetLayout,
                                                                          tmp_path: Path) -> None:
    layout, marker = _hostile_dataset(tiny_dataset, tmp_path, update_digests=False)
    with pytest.raises(DatasetError, match="text/piece_vectors.npy has SHA-256 .* refusing to load it"):
        TrainingData.load(layout.root)
    assert not marker.exists()


def test_a_pickle_in_the_text_models_never_runs_even_with_matching_digests(tiny_dataset: DatasetLayout,
                                                                          tmp_path: Path) -> None:
    layout, marker = _hostile_dataset(tiny_dataset, tmp_path, update_digests=True)
    TrainingData.load(layout.root)  # the digests match: only the data format protects now
    with pytest.raises(PieceVectorsError, match="not a numeric .npy array"):
        piece_embeddings(layout, fallback_dim=8, seed=0)
    assert not marker.exists()


def test_piece_embeddings_come_from_the_published_piece_vectors(tiny_dataset: DatasetLayout) -> None:
    matrix, known = piece_embeddings(tiny_dataset, fallback_dim=8, seed=0)
    published = PieceVectors.load(tiny_dataset)
    processor = sentencepiece_processor(Path(tiny_dataset.spm_model).read_bytes())
    assert matrix.shape == (processor.get_piece_size() + 1, published.vector_size)
    assert known == sum(1 for i in range(processor.get_piece_size()) if processor.id_to_piece(i) in published.pieces)
    piece = published.pieces[0]
    np.testing.assert_array_equal(matrix[processor.piece_to_id(piece) + 1], published.vectors[0])
