"""Titles in the graph: the dataset's SentencePiece model through tensorflow-text, and the
Doc2Vec piece vectors that initialise the token embedding.

The same :class:`TitleTokenizer` runs in the input pipeline and inside the serving signature,
so a title is tokenised identically in training and serving. Token ids are shifted by one so
that 0 is padding (SentencePiece uses 0 for ``<unk>``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ecom_kfp import uri

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

log = logging.getLogger(__name__)
PAD_ID = 0


class TitleTokenizer:
    """Raw title strings ``[B]`` -> int32 token ids ``[B, max_tokens]`` (0-padded, truncated).

    Titles are case-folded first (NFKC + lower case, the same op on build output and raw shop
    titles), so a serving request in upper case tokenises like its training twin.
    """

    def __init__(self, spm_model: bytes, max_tokens: int) -> None:
        import tensorflow_text as tf_text

        self.max_tokens = max_tokens
        self.sentencepiece = tf_text.SentencepieceTokenizer(model=spm_model, out_type="int32")

    @property
    def vocab_size(self) -> int:
        """Embedding rows needed: SentencePiece pieces plus the padding id."""
        return int(self.sentencepiece.vocab_size()) + 1

    def __call__(self, titles: tf.Tensor) -> tf.Tensor:
        import tensorflow as tf
        import tensorflow_text as tf_text

        pieces = self.sentencepiece.tokenize(tf_text.case_fold_utf8(titles))
        ids = (pieces + 1)[:, : self.max_tokens]
        return tf.cast(ids.to_tensor(default_value=PAD_ID, shape=[None, self.max_tokens]), tf.int32)


def piece_embeddings(spm_model: bytes, doc2vec_uri: str, fallback_dim: int, seed: int) -> tuple[np.ndarray, int]:
    """Embedding matrix ``[pieces + 1, dim]`` from the Doc2Vec model's vectors of the pieces.

    Rows of pieces the Doc2Vec model has no vector for (and the padding row) start small and
    random. When it has none at all (a pure DBOW model), the matrix is random with
    ``fallback_dim`` columns.

    Returns:
        The matrix and how many piece rows came from Doc2Vec.
    """
    import sentencepiece
    from gensim.models.doc2vec import Doc2Vec

    processor = sentencepiece.SentencePieceProcessor(model_proto=spm_model)
    with uri.local_copy(doc2vec_uri) as path:
        vectors = Doc2Vec.load(path).wv
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    known = [i for i, piece in enumerate(pieces) if piece in vectors.key_to_index]
    dim = vectors.vector_size if known else fallback_dim
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.05, size=(len(pieces) + 1, dim)).astype(np.float32)
    for i in known:
        matrix[i + 1] = vectors[pieces[i]]
    log.info("title embedding: %d of %d pieces initialised from Doc2Vec (dim %d)", len(known), len(pieces), dim)
    return matrix, len(known)
