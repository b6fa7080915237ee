"""Title models: SentencePiece in Python and tensorflow-text agree; Doc2Vec vectors are deterministic."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.tfrecord_build.text import (
    Doc2VecInference,
    PieceVectors,
    PieceVectorsError,
    TextModelError,
    TitleEmbedder,
    load_tf_tokenizer,
    piece_vectors,
    sentencepiece_processor,
    train_doc2vec,
    train_sentencepiece,
)

TRICKY = [
    "Samsung S23C550H 24\" LED Monitor",
    "SAMSUNG s23c550h",
    "Café Crème – 100% coton ✓ 😀",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３",
    "Nike Air-Max 90/270 (2019)",
    "日本語のタイトル",
    "  spaces \t and\ttabs  ",
    "",
]


@pytest.fixture(scope="module")
def titles(myntra_dir: Path) -> list[str]:
    with open(myntra_dir / "styles.csv", newline="", encoding="utf-8") as fh:
        return [row["productDisplayName"] for row, _ in zip(csv.DictReader(fh), range(400))]


@pytest.fixture(scope="module")
def text_models(tmp_path_factory: pytest.TempPathFactory, titles: list[str]) -> tuple[str, object]:
    """``(spm.model path, the trained Doc2Vec)``: SentencePiece and Doc2Vec on the first 300 titles
    (the other 100 stay unseen)."""
    root = tmp_path_factory.mktemp("text")
    model = train_sentencepiece(titles[:300], 600, seed=0).model
    spm_uri = str(root / "spm.model")
    uri.write_bytes(spm_uri, model)
    pieces = sentencepiece_processor(model).encode(titles[:300], out_type=str)
    return spm_uri, train_doc2vec([(str(i), p) for i, p in enumerate(pieces)], dim=8, epochs=3, seed=0)


def _saved_inference(doc2vec, root: Path) -> DatasetLayout:
    layout = DatasetLayout(str(root))
    Doc2VecInference.of(doc2vec).save(layout, {"dim": 8})
    return layout


def test_doc2vec_rebuilt_from_data_infers_the_trained_models_bytes(text_models, titles: list[str],
                                                                   tmp_path: Path) -> None:
    """Seen titles, unseen titles (pieces Doc2Vec never trained on) and empty-ish ones, byte for byte."""
    spm_uri, doc2vec = text_models
    layout = _saved_inference(doc2vec, tmp_path)
    for array in ("syn1neg", "cum_table"):
        with np.load(layout.doc2vec_arrays, allow_pickle=False) as arrays:
            assert arrays[array].dtype != object
    rebuilt = Doc2VecInference.load(layout).model()
    trained = TitleEmbedder(uri.read_bytes(spm_uri), doc2vec, seed=0, cache_size=0)
    again = TitleEmbedder(uri.read_bytes(spm_uri), rebuilt, seed=0, cache_size=0)
    probes = titles + TRICKY + ["x", "🙂", "zzqx 98765 ǅ"]
    assert any(p not in doc2vec.wv.key_to_index for t in titles[300:] for p in trained.pieces(t))
    assert [again.vector(t).tobytes() for t in probes] == [trained.vector(t).tobytes() for t in probes]


@pytest.mark.parametrize("damage, message", [
    (lambda layout: np.savez(layout.doc2vec_arrays, syn1neg=np.zeros((2, 8), np.float64),
                             cum_table=np.zeros(2, np.uint32)), "expected float32 syn1neg"),
    (lambda layout: np.savez(layout.doc2vec_arrays, syn1neg=np.array([{"a": 1}], dtype=object),
                             cum_table=np.zeros(2, np.uint32)), "not an .npz"),
    (lambda layout: uri.write_json(layout.doc2vec_settings, {"window": 5}), "expected the settings"),
])
def test_malformed_doc2vec_arrays_are_refused(text_models, tmp_path: Path, damage, message) -> None:
    layout = _saved_inference(text_models[1], tmp_path)
    damage(layout)
    with pytest.raises(PieceVectorsError, match=message):
        Doc2VecInference.load(layout)


def test_tensorflow_text_gives_the_python_ids(text_models: tuple[str, str], titles: list[str]) -> None:
    import tensorflow as tf

    spm_uri, _ = text_models
    processor = sentencepiece_processor(uri.read_bytes(spm_uri))
    batch = TRICKY + titles[:50]
    assert load_tf_tokenizer(spm_uri).tokenize(tf.constant(batch)).to_list() == processor.encode(batch)


def test_model_numbers_and_case_tokenise_without_unknowns(text_models: tuple[str, str]) -> None:
    processor = sentencepiece_processor(uri.read_bytes(text_models[0]))
    assert processor.encode("S23C550H") == processor.encode("s23c550h")
    assert all(processor.unk_id() not in ids for ids in processor.encode(TRICKY))
    # split_digits: every digit is its own piece, so unseen model numbers reuse known pieces.
    digits = [p for p in processor.encode("S23C550H", out_type=str) if any(c.isdigit() for c in p)]
    assert all(len(p.strip("▁")) == 1 for p in digits)


def test_vocab_size_is_lowered_and_reported_for_a_small_corpus(titles: list[str]) -> None:
    result = train_sentencepiece(titles[:100], 8000, seed=0)
    assert result.lowered and result.requested_vocab_size == 8000
    assert sentencepiece_processor(result.model).get_piece_size() == result.vocab_size < 8000


def test_no_titles_is_a_clear_error() -> None:
    with pytest.raises(TextModelError, match="no training titles"):
        train_sentencepiece([], 1000, seed=0)


def test_piece_embeddings_line_up_with_sentencepiece_ids(text_models: tuple[str, str]) -> None:
    spm_uri, doc2vec = text_models
    processor = sentencepiece_processor(uri.read_bytes(spm_uri))
    vectors = doc2vec.wv
    matrix, _ = piece_vectors(processor, PieceVectors.of(doc2vec))
    assert matrix.shape == (processor.get_piece_size(), 8)
    piece = processor.id_to_piece(processor.encode("Men Tshirt")[0])
    assert np.array_equal(matrix[processor.piece_to_id(piece)], vectors[piece])
    unseen = processor.piece_to_id("<0xF0>")  # a byte piece no Myntra title needs
    assert piece in vectors.key_to_index and "<0xF0>" not in vectors.key_to_index
    assert 0 < np.abs(matrix[unseen]).max() < 0.1


def test_piece_vectors_are_published_as_data_and_read_back_exactly(text_models: tuple[str, str],
                                                                   tmp_path: Path) -> None:
    vectors = PieceVectors.of(text_models[1])
    layout = DatasetLayout(str(tmp_path))
    vectors.save(layout, {"dim": 8})
    assert np.load(layout.piece_vectors, allow_pickle=False).dtype == np.float32
    again = PieceVectors.load(layout)
    assert again.pieces == vectors.pieces and np.array_equal(again.vectors, vectors.vectors)
    assert uri.read_json(layout.piece_vocabulary)["doc2vec"] == {"dim": 8}


@pytest.mark.parametrize("damage, message", [
    (lambda layout: np.save(layout.piece_vectors, np.zeros(3, np.float32)), "2-D float array"),
    (lambda layout: np.save(layout.piece_vectors, np.zeros((2, 8), np.int64)), "2-D float array"),
    (lambda layout: uri.write_json(layout.piece_vocabulary, {"pieces": ["a"]}), "must list 2 strings"),
    (lambda layout: uri.write_bytes(layout.piece_vectors, b"\x80\x04not an npy"), "not a numeric .npy array"),
])
def test_malformed_piece_vectors_are_refused(tmp_path: Path, damage, message) -> None:
    layout = DatasetLayout(str(tmp_path))
    PieceVectors(("a", "b"), np.ones((2, 8), np.float32)).save(layout, {})
    damage(layout)
    with pytest.raises(PieceVectorsError, match=message):
        PieceVectors.load(layout)


def test_title_vectors_do_not_depend_on_the_process(text_models, tmp_path: Path) -> None:
    """gensim's own infer_vector seeds from Python's randomised hash; ours must not. The children
    rebuild Doc2Vec from its saved data, as the build's writer processes and pods do.

    The children keep this environment (OPENBLAS_CORETYPE picks the BLAS kernel, whose rounding
    differs between kernels): only the hash seed changes.
    """
    spm_uri, doc2vec = text_models
    layout = _saved_inference(doc2vec, tmp_path)
    code = ("import sys; from ecom_kfp import uri; from ecom_kfp.contracts.layouts import DatasetLayout;"
            "from ecom_kfp.tfrecord_build.text import Doc2VecInference, TitleEmbedder;"
            "d = Doc2VecInference.load(DatasetLayout(sys.argv[2])).model();"
            "e = TitleEmbedder(uri.read_bytes(sys.argv[1]), d, seed=0);"
            "print(e.vector('Puma Men Blue Shoes').tobytes().hex())")
    outputs = {subprocess.run([sys.executable, "-c", code, spm_uri, layout.root], check=True, capture_output=True,
                              text=True, env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2)}
    here = TitleEmbedder(uri.read_bytes(spm_uri), doc2vec, seed=0).vector("Puma Men Blue Shoes")
    assert outputs == {here.tobytes().hex() + "\n"}


@pytest.fixture(scope="module")
def embedder_parts(text_models: tuple[str, str]) -> tuple[bytes, object]:
    spm_uri, doc2vec = text_models
    return uri.read_bytes(spm_uri), doc2vec


def test_titles_that_normalise_alike_share_one_vector_cached_or_not(embedder_parts, titles: list[str]) -> None:
    spm_model, doc2vec = embedder_parts
    cached = TitleEmbedder(spm_model, doc2vec, seed=0)
    uncached = TitleEmbedder(spm_model, doc2vec, seed=0, cache_size=0)
    first = cached.vector("Puma Men Blue Shoes")
    assert np.array_equal(cached.vector("PUMA  men blue shoes"), first)  # case-folded, spaces collapsed
    assert cached.vector("Puma Men Blue Shoes") is first  # from the cache, which callers cannot alter
    assert not first.flags.writeable
    assert np.array_equal(uncached.vector("Puma Men Blue Shoes"), first)
    assert not np.array_equal(cached.vector("Puma Men Red Shoes"), first)
    # The cache changes no vector: a title in the middle of a stream gets what it gets alone.
    stream = [cached.vector(t) for t in titles[:30] + titles[:30]]
    assert all(np.array_equal(v, uncached.vector(t)) for v, t in zip(stream, titles[:30] * 2))
    assert not np.array_equal(TitleEmbedder(spm_model, doc2vec, seed=1).vector("Puma Men Blue Shoes"), first)


def test_inference_epochs_default_to_training_epochs_and_change_the_vector(embedder_parts) -> None:
    spm_model, doc2vec = embedder_parts
    default = TitleEmbedder(spm_model, doc2vec, seed=0)
    assert default.epochs == doc2vec.epochs == 3
    same = TitleEmbedder(spm_model, doc2vec, seed=0, epochs=3).vector("Nike Men Black Tshirt")
    assert np.array_equal(default.vector("Nike Men Black Tshirt"), same)
    assert not np.array_equal(TitleEmbedder(spm_model, doc2vec, seed=0, epochs=1).vector("Nike Men Black Tshirt"),
                              same)
    with pytest.raises(ValueError, match="inference epochs"):
        TitleEmbedder(spm_model, doc2vec, seed=0, epochs=-1)


def test_prefetched_seed_draws_give_the_vectors_of_drawing_each_seed_when_asked(embedder_parts, titles, monkeypatch):
    from ecom_kfp.tfrecord_build import text

    spm_model, doc2vec = embedder_parts
    prefetched = [TitleEmbedder(spm_model, doc2vec, seed=0, cache_size=0).vector(t) for t in titles[:20]]

    class DrawWhenAsked:
        def __init__(self, rng: np.random.RandomState, count: int) -> None:
            self.rng = rng

        def randint(self, *args, **kwargs):
            return self.rng.randint(*args, **kwargs)

    monkeypatch.setattr(text, "_PrefetchedSeeds", DrawWhenAsked)
    drawn = [TitleEmbedder(spm_model, doc2vec, seed=0, cache_size=0).vector(t) for t in titles[:20]]
    assert all(np.array_equal(a, b) for a, b in zip(prefetched, drawn, strict=True))
