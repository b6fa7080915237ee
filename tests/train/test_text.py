"""The in-graph title tokenizer: SentencePiece ids plus hashed whole words and word bigrams."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.train.text import TitleTokenizer


def test_word_ids_hash_words_then_bigrams_ignoring_case_and_punctuation(tiny_dataset: DatasetLayout) -> None:
    tokenizer = TitleTokenizer(tiny_dataset.spm_model, max_tokens=6, word_buckets=1000)
    ids = tokenizer.word_ids(tf.constant(["Navy-Blue Shirt", "NAVY blue  shirt!", "", "a b c d e"])).numpy()
    buckets = tf.strings.to_hash_bucket_fast(["navy", "blue", "shirt", "navy blue", "blue shirt"], 1000).numpy() + 1
    np.testing.assert_array_equal(ids[0], np.append(buckets, 0))
    np.testing.assert_array_equal(ids[1], ids[0])
    np.testing.assert_array_equal(ids[2], np.zeros(6))
    assert ids.dtype == np.int32 and (ids[3] > 0).all()  # 5 words + 4 bigrams, cut to 6


def test_model_inputs_add_word_ids_only_when_enabled(tiny_dataset: DatasetLayout) -> None:
    titles = tf.constant(["Navy Blue Shirt"])
    assert set(TitleTokenizer(tiny_dataset.spm_model, 8).model_inputs(titles)) == {"title_tokens"}
    assert set(TitleTokenizer(tiny_dataset.spm_model, 8, 16).model_inputs(titles)) == {"title_tokens", "title_words"}
