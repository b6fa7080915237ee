"""Titles in the graph: the dataset's SentencePiece model through tensorflow-text, and the
Doc2Vec piece vectors that initialise the token embedding.

Both build on the dataset stage's helpers (:func:`ecom_kfp.tfrecord_build.text.load_tf_tokenizer`,
:func:`ecom_kfp.tfrecord_build.text.piece_vectors`), adding what a Keras model needs: token
ids are shifted by one so that 0 is padding (SentencePiece uses 0 for ``<unk>``), and the
embedding matrix gets the matching padding row. The same :class:`TitleTokenizer` runs in the
input pipeline and inside the serving signature, so a title is tokenised identically in
training and serving.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ecom_kfp import uri
from ecom_kfp.contracts import serving
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.tfrecord_build.text import PieceVectors, load_tf_tokenizer, piece_vectors, sentencepiece_processor

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

log = logging.getLogger(__name__)
PAD_ID = 0
#: Character n-gram lengths of :meth:`TitleTokenizer.char_ids`: the TF-IDF baseline's ``char_wb`` 2-4
#: (3-5 measured the same level-3 accuracy on myntra-dev, at more training time: benchmarks/README.md).
CHAR_NGRAMS = (2, 4)
#: Character n-grams kept per title. 2-4-grams number about 3 per character; on myntra-dev's
#: 5,249 titles the median is 87, the 99.9th percentile 177 and the longest 195, so 192 keeps
#: nearly every title whole, and a longer one loses only its last words' n-grams.
MAX_CHAR_GRAMS = 192


class TitleTokenizer:
    """Raw title strings ``[B]`` -> int32 token ids ``[B, max_tokens]`` (0-padded, truncated).

    Titles are case-folded first (NFKC + lower case, the same op on build output and raw shop
    titles), so a serving request in upper case tokenises like its training twin.

    With ``word_buckets`` > 0 it also hashes whole words and word bigrams (:meth:`word_ids`):
    SentencePiece pieces generalise across spellings, but word n-grams are what a TF-IDF model
    wins with ("track pants" is not "track" + "pants").

    With ``char_buckets`` > 0 it also hashes character n-grams within words (:meth:`char_ids`):
    they carry a class whose name is part of a word or a variant spelling ("kurta" in "kurtas",
    "kurti") to titles whose whole words were rare or unseen in training.
    """

    def __init__(self, spm_model_uri: str, max_tokens: int, word_buckets: int = 0, char_buckets: int = 0) -> None:
        self.max_tokens = max_tokens
        self.word_buckets = word_buckets
        self.char_buckets = char_buckets
        self.sentencepiece = load_tf_tokenizer(spm_model_uri)

    def model_inputs(self, titles: tf.Tensor) -> dict[str, tf.Tensor]:
        """The model's title inputs for raw titles ``[B]``: piece ids, and word- and character-hash
        ids when enabled."""
        inputs = {serving.MODEL_TITLE_INPUT: self(titles)}
        if self.word_buckets:
            inputs[serving.MODEL_TITLE_WORDS_INPUT] = self.word_ids(titles)
        if self.char_buckets:
            inputs[serving.MODEL_TITLE_CHARS_INPUT] = self.char_ids(titles)
        return inputs

    def word_ids(self, titles: tf.Tensor) -> tf.Tensor:
        """Hash ids (1..word_buckets, 0 = padding) of each title's words, then its word bigrams,
        as int32 ``[B, max_tokens]``; FarmHash buckets are stable across processes and versions."""
        import tensorflow as tf

        grams = tf.strings.ngrams(_words(titles), ngram_width=(1, 2), separator=" ")[:, : self.max_tokens]
        return self._padded(tf.strings.to_hash_bucket_fast(grams, self.word_buckets) + 1, self.max_tokens)

    def char_ids(self, titles: tf.Tensor) -> tf.Tensor:
        """Hash ids (1..char_buckets, 0 = padding) of the :data:`CHAR_NGRAMS` character n-grams of each
        word padded with a space on either side (sklearn's ``char_wb``: " navy " gives " n", "na", ...,
        " nav", ..., "avy "), word by word, as int32 ``[B, MAX_CHAR_GRAMS]``."""
        import tensorflow as tf

        chars = tf.strings.unicode_split(" " + _words(titles) + " ", "UTF-8")  # [B, words, chars]
        # One StringNGrams op for every length: tensorflow_text's ngrams per length built ~6 times the
        # graph, and its tracing cost ~2 s each time a dataset or a signature traced the tokenizer.
        low, high = CHAR_NGRAMS
        grams = tf.strings.ngrams(chars, ngram_width=tuple(range(low, high + 1)), separator="")
        grams = grams.merge_dims(1, 2)[:, :MAX_CHAR_GRAMS]
        return self._padded(tf.strings.to_hash_bucket_fast(grams, self.char_buckets) + 1, MAX_CHAR_GRAMS)

    @property
    def vocab_size(self) -> int:
        """Embedding rows needed: SentencePiece pieces plus the padding id."""
        return int(self.sentencepiece.vocab_size()) + 1

    def __call__(self, titles: tf.Tensor) -> tf.Tensor:
        import tensorflow_text as tf_text

        pieces = self.sentencepiece.tokenize(tf_text.case_fold_utf8(titles))
        return self._padded((pieces + 1)[:, : self.max_tokens], self.max_tokens)

    @staticmethod
    def _padded(ids: tf.RaggedTensor, length: int) -> tf.Tensor:
        """Ragged ids of at most ``length`` per title -> int32 ``[B, length]``, 0-padded."""
        import tensorflow as tf

        return tf.cast(ids.to_tensor(default_value=PAD_ID, shape=[None, length]), tf.int32)


def _words(titles: tf.Tensor) -> tf.RaggedTensor:
    """The case-folded words ``[B, (words)]`` of raw titles, split on anything but letters and digits."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    return tf.strings.split(tf.strings.regex_replace(tf_text.case_fold_utf8(titles), r"[^\pL\pN]+", " "))


def piece_embeddings(dataset: DatasetLayout, fallback_dim: int, seed: int) -> tuple[np.ndarray, int]:
    """Embedding matrix ``[pieces + 1, dim]``: a padding row, then the Doc2Vec vector of each piece.

    Reads the dataset's SentencePiece model and :class:`~ecom_kfp.tfrecord_build.text.PieceVectors`
    (data, never a pickle). Rows of pieces the Doc2Vec model has no vector for start small and random (the dataset
    helper's rule). When it has none at all (a pure DBOW model), the matrix is random with
    ``fallback_dim`` columns.

    Returns:
        The matrix and how many piece rows came from Doc2Vec.
    """
    processor = sentencepiece_processor(uri.read_bytes(dataset.spm_model))
    pieces, known = piece_vectors(processor, PieceVectors.load(dataset), seed)
    rng = np.random.default_rng(seed)
    if known:
        matrix = np.concatenate([rng.normal(0.0, 0.05, size=(1, pieces.shape[1])).astype(np.float32), pieces])
    else:
        matrix = rng.normal(0.0, 0.05, size=(processor.get_piece_size() + 1, fallback_dim)).astype(np.float32)
    log.info("title embedding: %d of %d pieces initialised from Doc2Vec (dim %d)", known,
             processor.get_piece_size(), matrix.shape[1])
    return matrix, known
