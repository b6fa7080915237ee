"""Title models: SentencePiece trained on training titles, Doc2Vec trained on their pieces.

The SentencePiece model case-folds (``nmt_nfkc_cf``), splits digits into single pieces and falls
back to UTF-8 bytes, so ``S23C550H``, ``s23c550h`` and an emoji all tokenise without ``<unk>``,
and identically in Python and in ``tensorflow_text`` (the trainer and the serving signature load
it with :func:`load_tf_tokenizer`). Doc2Vec runs PV-DBOW with skip-gram piece training
(``dbow_words=1``), so it learns a vector for every piece as well; :func:`piece_vectors`
lines those up with SentencePiece ids to initialise a token embedding.

What later stages need from Doc2Vec, the piece vectors and their pieces, is published as data
(:class:`PieceVectors`: ``text/piece_vectors.npy`` read with ``allow_pickle=False``, and
``text/piece_vectors.json``), never as a gensim pickle: a replaced file in a shared bucket must not
run code in the trainer. The build's own writers (other processes, or other pods of a fan-out)
infer title vectors from data too (:class:`Doc2VecInference`: the piece vectors plus the
negative-sampling arrays and settings ``train_document_dbow`` reads), so no step unpickles a model.

Determinism: both models train single-threaded from fixed seeds, and :meth:`TitleEmbedder.vector`
seeds each inference from the title's pieces instead of gensim's ``infer_vector`` (which seeds from
Python's per-process ``hash``), so re-runs and fan-out pieces write identical vectors.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import DatasetLayout

if TYPE_CHECKING:  # pragma: no cover
    import sentencepiece
    import tensorflow_text
    from gensim.models.doc2vec import Doc2Vec

log = logging.getLogger(__name__)

#: Rule that NFKC-normalises and case-folds inside the model, so callers need not lower-case.
NORMALIZATION = "nmt_nfkc_cf"
#: Byte fallback reserves 256 pieces, plus <unk>, <s>, </s>.
RESERVED_PIECES = 259
#: Sentences SentencePiece samples from a very large catalog.
MAX_TRAINING_SENTENCES = 2_000_000
_TOO_LARGE = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
#: Scale of the random rows for pieces Doc2Vec never saw: small next to trained vectors.
UNSEEN_PIECE_SCALE = 0.01
#: Distinct titles whose vectors a :class:`TitleEmbedder` keeps (about 0.6 KiB each at 64 dimensions,
#: so ~12 MiB per writer process).
VECTOR_CACHE_SIZE = 20_000


class TextModelError(ValueError):
    """The training titles cannot support a SentencePiece model."""


@dataclass(frozen=True)
class SentencePieceResult:
    """A trained SentencePiece model and the vocabulary size it got.

    Attributes:
        model: The serialized model proto (``text/spm.model``).
        requested_vocab_size: What ``--spm-vocab-size`` asked for.
        vocab_size: What the titles supported (lower when the corpus is small).
    """

    model: bytes
    requested_vocab_size: int
    vocab_size: int

    @property
    def lowered(self) -> bool:
        return self.vocab_size < self.requested_vocab_size


def train_sentencepiece(titles: Sequence[str], vocab_size: int, seed: int) -> SentencePieceResult:
    """Train a unigram SentencePiece model on ``titles``.

    When the titles hold fewer distinct pieces than ``vocab_size``, SentencePiece names the
    largest size it can reach; the model is retrained once at that size and the result says so.

    Raises:
        TextModelError: no titles, or SentencePiece refuses even the size it suggested.
    """
    import sentencepiece as spm

    if not titles:
        raise TextModelError("no training titles to train SentencePiece on")
    spm.set_random_generator_seed(seed)

    def attempt(size: int) -> bytes:
        buffer = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(titles), model_writer=buffer, vocab_size=size, model_type="unigram",
            normalization_rule_name=NORMALIZATION, split_digits=True, byte_fallback=True,
            character_coverage=1.0, input_sentence_size=MAX_TRAINING_SENTENCES, shuffle_input_sentence=True,
            num_threads=1, minloglevel=2)
        return buffer.getvalue()

    try:
        return SentencePieceResult(attempt(vocab_size), vocab_size, vocab_size)
    except RuntimeError as err:
        match = _TOO_LARGE.search(str(err))
        if not match:
            raise TextModelError(f"SentencePiece training failed: {err}") from err
        supported = int(match.group(2))
    log.warning("SentencePiece: %d training titles support at most %d pieces, not %d; using %d",
                len(titles), supported, vocab_size, supported)
    try:
        return SentencePieceResult(attempt(supported), vocab_size, supported)
    except RuntimeError as err:
        raise TextModelError(f"SentencePiece training failed at vocab size {supported}: {err}") from err


def sentencepiece_processor(model: bytes) -> sentencepiece.SentencePieceProcessor:
    """A Python SentencePiece processor of a serialized model."""
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=model)


def train_doc2vec(documents: Sequence[tuple[str, Sequence[str]]], dim: int, epochs: int, seed: int) -> Doc2Vec:
    """PV-DBOW Doc2Vec with piece vectors over ``(tag, pieces)`` documents (single thread, seeded)."""
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    tagged = [TaggedDocument(list(pieces), [tag]) for tag, pieces in documents]
    model = Doc2Vec(vector_size=dim, dm=0, dbow_words=1, window=5, min_count=1, sample=0, epochs=epochs,
                    workers=1, seed=seed)
    model.build_vocab(tagged)
    model.train(tagged, total_examples=len(tagged), epochs=epochs)
    return model


class PieceVectorsError(ValueError):
    """Published piece vectors (or Doc2Vec inference arrays) that are not the numeric data they must be."""


@dataclass(frozen=True)
class PieceVectors:
    """Doc2Vec's vector of every piece it learnt: the part of the model later stages use.

    Attributes:
        pieces: Piece strings, one per row of ``vectors``.
        vectors: float32 ``[len(pieces), dim]``.
    """

    pieces: tuple[str, ...]
    vectors: np.ndarray

    @classmethod
    def of(cls, model: Doc2Vec) -> PieceVectors:
        return cls(tuple(model.wv.index_to_key), np.asarray(model.wv.vectors, dtype=np.float32))

    @property
    def vector_size(self) -> int:
        return int(self.vectors.shape[1])

    def save(self, layout: DatasetLayout, settings: dict[str, Any]) -> None:
        """Write ``text/piece_vectors.npy`` and ``text/piece_vectors.json`` (pieces + ``settings``)."""
        buffer = io.BytesIO()
        np.save(buffer, self.vectors, allow_pickle=False)
        uri.write_bytes(layout.piece_vectors, buffer.getvalue())
        uri.write_json(layout.piece_vocabulary, {"pieces": list(self.pieces), "doc2vec": settings})

    @classmethod
    def load(cls, layout: DatasetLayout) -> PieceVectors:
        """Read what :meth:`save` wrote, as data only (``np.load(allow_pickle=False)``).

        Raises:
            PieceVectorsError: the files do not hold a float matrix with one string piece per row.
        """
        try:
            vectors = np.load(io.BytesIO(uri.read_bytes(layout.piece_vectors)), allow_pickle=False)
        except ValueError as err:  # object arrays, or not an .npy file
            raise PieceVectorsError(f"{layout.piece_vectors}: not a numeric .npy array ({err})") from err
        pieces = uri.read_json(layout.piece_vocabulary).get("pieces")
        if vectors.ndim != 2 or vectors.dtype.kind != "f":
            raise PieceVectorsError(f"{layout.piece_vectors}: expected a 2-D float array, got {vectors.dtype} "
                                    f"{list(vectors.shape)}")
        if not isinstance(pieces, list) or not all(isinstance(p, str) for p in pieces) \
                or len(pieces) != vectors.shape[0]:
            raise PieceVectorsError(f"{layout.piece_vocabulary}: 'pieces' must list {vectors.shape[0]} strings, "
                                    "one per row of the vectors")
        return cls(tuple(pieces), vectors.astype(np.float32, copy=False))


#: Doc2Vec settings ``train_document_dbow`` and :meth:`TitleEmbedder._infer` read, besides the arrays.
INFERENCE_SETTINGS = ("vector_size", "layer1_size", "window", "negative", "alpha", "min_alpha", "epochs")


@dataclass(frozen=True)
class Doc2VecInference:
    """Exactly what inferring a title vector reads of a trained PV-DBOW Doc2Vec model, as data.

    ``train_document_dbow`` with ``learn_words``/``learn_hidden`` off, no hierarchical softmax and no
    down-sampling reads the piece vectors and their index (``key_to_index``), the output weights
    ``syn1neg``, the negative-sampling table ``cum_table`` and a few settings. These are saved as
    ``.npy``/``.npz`` (read with ``allow_pickle=False``) and JSON, and :meth:`model` rebuilds a real
    ``Doc2Vec`` from them that infers the same bytes as the trained model.

    Attributes:
        pieces: The piece vectors (``text/piece_vectors.npy`` + ``.json``).
        syn1neg: float32 ``[len(pieces), layer1_size]`` negative-sampling output weights.
        cum_table: uint32 ``[len(pieces)]`` cumulative noise distribution.
        settings: :data:`INFERENCE_SETTINGS` by name.
    """

    pieces: PieceVectors
    syn1neg: np.ndarray
    cum_table: np.ndarray
    settings: dict[str, Any]

    @classmethod
    def of(cls, model: Doc2Vec) -> Doc2VecInference:
        if model.hs or model.sample or model.dm:
            raise ValueError("Doc2VecInference supports PV-DBOW with negative sampling, no hs, no sample")
        return cls(PieceVectors.of(model), np.asarray(model.syn1neg, dtype=np.float32),
                   np.asarray(model.cum_table, dtype=np.uint32),
                   {name: getattr(model, name) for name in INFERENCE_SETTINGS})

    def save(self, layout: DatasetLayout, settings: dict[str, Any]) -> None:
        """Write the piece vectors (with ``settings`` in their JSON) and ``text/doc2vec_inference.npz`` + ``.json``."""
        self.pieces.save(layout, settings)
        buffer = io.BytesIO()
        np.savez(buffer, syn1neg=self.syn1neg, cum_table=self.cum_table)
        uri.write_bytes(layout.doc2vec_arrays, buffer.getvalue())
        uri.write_json(layout.doc2vec_settings, self.settings)

    @classmethod
    def load(cls, layout: DatasetLayout) -> Doc2VecInference:
        """Read what :meth:`save` wrote, as data only.

        Raises:
            PieceVectorsError: an array of the wrong type or shape, or settings missing.
        """
        pieces = PieceVectors.load(layout)
        try:
            with np.load(io.BytesIO(uri.read_bytes(layout.doc2vec_arrays)), allow_pickle=False) as arrays:
                syn1neg, cum_table = arrays["syn1neg"], arrays["cum_table"]
        except (ValueError, KeyError, OSError) as err:  # object arrays, a missing array, or not an .npz file
            raise PieceVectorsError(f"{layout.doc2vec_arrays}: not an .npz of numeric syn1neg and cum_table ({err})") \
                from err
        settings = uri.read_json(layout.doc2vec_settings)
        rows = len(pieces.pieces)
        if syn1neg.dtype != np.float32 or syn1neg.ndim != 2 or syn1neg.shape[0] != rows \
                or cum_table.dtype != np.uint32 or cum_table.shape != (rows,):
            raise PieceVectorsError(f"{layout.doc2vec_arrays}: expected float32 syn1neg [{rows}, n] and uint32 "
                                    f"cum_table [{rows}], got {syn1neg.dtype} {list(syn1neg.shape)} and "
                                    f"{cum_table.dtype} {list(cum_table.shape)}")
        if not isinstance(settings, dict) or set(settings) != set(INFERENCE_SETTINGS) \
                or settings["layer1_size"] != syn1neg.shape[1] or settings["vector_size"] != pieces.vector_size:
            raise PieceVectorsError(f"{layout.doc2vec_settings}: expected the settings {INFERENCE_SETTINGS} matching "
                                    "the arrays")
        return cls(pieces, syn1neg, cum_table, settings)

    def model(self) -> Doc2Vec:
        """A ``Doc2Vec`` whose inference state is these arrays (it has no training corpus or doc vectors)."""
        from gensim.models.doc2vec import Doc2Vec

        s = self.settings
        model = Doc2Vec(vector_size=s["vector_size"], dm=0, dbow_words=1, window=s["window"], negative=s["negative"],
                        hs=0, sample=0, alpha=s["alpha"], min_alpha=s["min_alpha"], epochs=s["epochs"], workers=1)
        model.layer1_size = s["layer1_size"]
        model.wv.index_to_key = list(self.pieces.pieces)
        model.wv.key_to_index = {piece: row for row, piece in enumerate(self.pieces.pieces)}
        model.wv.vectors = np.ascontiguousarray(self.pieces.vectors)
        model.syn1neg = np.ascontiguousarray(self.syn1neg)
        model.cum_table = np.ascontiguousarray(self.cum_table)
        return model


class TitleEmbedder:
    """Title -> pieces -> Doc2Vec vector: a deterministic function of the title's pieces.

    Each inference is seeded from the pieces (not from gensim's per-process ``hash``), so re-runs,
    writer processes and fan-out pieces give a title the same vector, and titles that normalise
    to the same pieces (case, width, spacing) share one vector. That makes vectors cacheable: the
    last ``cache_size`` distinct titles are kept, so repeated titles cost a dictionary lookup.

    Args:
        spm_model: Serialized SentencePiece model.
        doc2vec: The Doc2Vec model trained on its pieces.
        seed: Mixed into each title's inference seed.
        epochs: Inference epochs (``None`` = the model's training epochs, like ``infer_vector``).
        cache_size: Distinct titles whose vectors are kept.
    """

    def __init__(self, spm_model: bytes, doc2vec: Doc2Vec, seed: int, epochs: int | None = None,
                 cache_size: int = VECTOR_CACHE_SIZE) -> None:
        self.processor = sentencepiece_processor(spm_model)
        self.doc2vec = doc2vec
        self.seed = seed
        self.epochs = doc2vec.epochs if epochs is None else epochs
        if self.epochs < 1:
            raise ValueError(f"inference epochs must be at least 1, got {self.epochs}")
        # Re-seeded per title: building a RandomState costs tens of times more than re-seeding one.
        self._rng = np.random.RandomState(0)
        self._cached = functools.lru_cache(maxsize=cache_size)(self._infer)

    def pieces(self, title: str) -> list[str]:
        return self.processor.encode(title, out_type=str)

    def vector(self, title: str) -> np.ndarray:
        """The title's vector (read-only: it may be shared with other records of the same title)."""
        return self._cached(tuple(self.pieces(title)))

    def _infer(self, pieces: tuple[str, ...]) -> np.ndarray:
        """Infer like ``Doc2Vec.infer_vector(pieces, epochs=self.epochs)``, seeded from the pieces."""
        from gensim.models.doc2vec_inner import train_document_dbow

        model = self.doc2vec
        digest = hashlib.sha256("\x00".join((str(self.seed), *pieces)).encode()).digest()
        rng = self._rng
        rng.seed(int.from_bytes(digest[:4], "big"))
        # Same start as gensim's pseudorandom_weak_vector, same update loop as infer_vector.
        vector = ((rng.random_sample(model.vector_size) - 0.5) / model.vector_size).astype(np.float32)[None, :]
        model.random = _PrefetchedSeeds(rng, 2 * self.epochs)  # negative sampling is seeded from it
        work = np.zeros(model.layer1_size, dtype=np.float32)
        lockf = np.ones(1, dtype=np.float32)
        words = list(pieces)
        alpha = model.alpha
        delta = (alpha - model.min_alpha) / max(self.epochs - 1, 1)
        for _ in range(self.epochs):
            train_document_dbow(model, words, [0], alpha, work, learn_words=False, learn_hidden=False,
                                doctag_vectors=vector, doctags_lockf=lockf)
            alpha -= delta
        result = vector[0]
        result.setflags(write=False)
        return result


class _PrefetchedSeeds:
    """``model.random`` during one inference, answering gensim's seed draws from one numpy call.

    Each ``train_document_dbow`` call seeds its negative-sampling generator with two
    ``randint(0, 2**24)`` draws, and one numpy call costs as much as a tenth of the epoch's work.
    The draws are made up front in one call, which gives the same numbers in the same order; any
    other or further call goes to the generator itself.
    """

    _HIGH = 2**24

    def __init__(self, rng: np.random.RandomState, count: int) -> None:
        self._rng = rng
        self._seeds = rng.randint(0, self._HIGH, size=count).tolist()
        self._next = 0

    def randint(self, low: int, high: int | None = None, size: Any = None) -> Any:
        if (low, high, size) == (0, self._HIGH, None) and self._next < len(self._seeds):
            self._next += 1
            return self._seeds[self._next - 1]
        return self._rng.randint(low, high, size)


def load_tf_tokenizer(spm_model_uri: str) -> tensorflow_text.SentencepieceTokenizer:
    """The dataset's SentencePiece model as a ``tensorflow_text`` tokenizer (int32 ids).

    Gives the same ids as the Python library on any title, so a model trained on records and a
    serving signature tokenise alike.
    """
    import tensorflow as tf
    import tensorflow_text

    return tensorflow_text.SentencepieceTokenizer(model=uri.read_bytes(spm_model_uri), out_type=tf.int32)


def piece_vectors(processor: Any, vectors: PieceVectors, seed: int = 0) -> tuple[np.ndarray, int]:
    """Embedding matrix ``[spm vocab size, dim]`` whose row ``i`` is Doc2Vec's vector of piece ``i``,
    and how many rows came from Doc2Vec.

    Pieces Doc2Vec never saw (control pieces, unused byte pieces) get small random rows
    (normal, std :data:`UNSEEN_PIECE_SCALE`, seeded) rather than zeros, so they stay distinguishable.

    Args:
        processor: The ``sentencepiece.SentencePieceProcessor`` of the dataset.
        vectors: The Doc2Vec model's piece vectors.
        seed: Seed of the rows of unseen pieces.
    """
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, UNSEEN_PIECE_SCALE, size=(processor.get_piece_size(), vectors.vector_size))
    matrix = matrix.astype(np.float32)
    row_of = {piece: row for row, piece in enumerate(vectors.pieces)}
    known = 0
    for piece_id in range(processor.get_piece_size()):
        row = row_of.get(processor.id_to_piece(piece_id))
        if row is not None:
            matrix[piece_id] = vectors.vectors[row]
            known += 1
    return matrix, known
