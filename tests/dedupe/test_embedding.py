"""Rule 5: near duplicates by image-embedding cosine similarity, with a real (tiny) Keras model.

The model is a fixed random convolution pooled to a 4x4 grid: a resized copy of a picture gets
nearly the same vector, a different picture a clearly different one. It is saved both as a
``.keras`` file and as an exported SavedModel directory, the two formats the rule loads.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.digests import DigestError, content_digest, file_sha256, tree_digests
from ecom_kfp.dedupe import DedupeConfig, run
from ecom_kfp.dedupe.embedding import l2_normalise, load_embedding_model, similar_pairs
from ecom_kfp.testing.hostile import embedder_writing_a_file
from tests.dedupe.helpers import dedupe, jpeg, picture

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SIDE = 32
ONLY_EMBEDDING = {"title_rule": False, "sha256_rule": False, "grid_rule": False, "phash_rule": False,
                  "phash_title_rule": False, "near_removes": True}


def build_model(input_shape: tuple[int, int, int] = (SIDE, SIDE, 3)):
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)  # signed, so unrelated pictures point apart
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False,
                            kernel_initializer=keras.initializers.RandomNormal(seed=0))(x)
    x = keras.layers.AveragePooling2D(SIDE // 4)(x)
    return keras.Model(inputs, keras.layers.Flatten()(x))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same model as ``model.keras`` and as a SavedModel directory."""
    root = tmp_path_factory.mktemp("embedding-model")
    model = build_model()
    model.save(root / "model.keras")
    model.export(str(root / "saved_model"), verbose=False)
    return {"keras": root / "model.keras", "saved_model": root / "saved_model"}


def products() -> list[dict]:
    image = picture(11)
    return [{"product_id": "big", "title": "a", "image": jpeg(image)},
            {"product_id": "small", "title": "b", "image": jpeg(image.resize((72, 96)), quality=30)},
            {"product_id": "other", "title": "c", "image": jpeg(picture(12))},
            {"product_id": "third", "title": "d", "image": jpeg(picture(13))}]


def test_embedding_rule_groups_resized_copy_only(models, make_layout, tmp_path):
    src = make_layout(products())
    kept, dups, _, report = dedupe(src, tmp_path / "on", embedding_model=str(models["keras"]), **ONLY_EMBEDDING)
    assert set(kept) == {"big", "other", "third"} and kept["big"]["group_size"] == 2
    assert [(d["product_id"], d["rule"], d["kept_product_id"]) for d in dups] == [("small", "embedding", "big")]
    assert 0.0 <= dups[0]["distance"] <= 1 - 0.97
    assert report["rules"]["embedding"] == {"enabled": True, "role": "removal and leak groups", "matched_products": 2,
                                            "dropped": 1, "vetoed_pairs": 0, "too_common": 0}
    assert report["embedding_threshold"] == 0.97
    _, dups, _, report = dedupe(src, tmp_path / "off", **ONLY_EMBEDDING)
    assert dups == [] and report["rules"]["embedding"]["enabled"] is False
    # Without --near-removes the embedding match only keeps the copy in the same split.
    kept, dups, _, _ = dedupe(src, tmp_path / "leak", embedding_model=str(models["keras"]),
                              **{**ONLY_EMBEDDING, "near_removes": False})
    assert dups == [] and kept["small"]["split_group"] == kept["big"]["split_group"] == "big"


def test_threshold_separates_same_from_different_pictures(models, make_layout, tmp_path):
    from ecom_kfp.dedupe.embedding import embed_images
    from ecom_kfp.dedupe.image_hashes import ImageJob

    src = make_layout(products())
    jobs = [ImageJob((str(p),), None) for p in sorted(src.glob("images/*/*.jpg"))]
    vectors = embed_images(jobs, load_embedding_model(str(models["keras"])), batch_size=3, progress=False)
    similarity = vectors @ vectors.T
    same = similarity[np.triu_indices(4, 1)]
    # Exactly one pair (the resized copy) is near; the others are far below the threshold.
    assert (same >= 0.97).sum() == 1 and np.sort(same)[-2] < 0.9
    # A permissive threshold merges everything, which shows the threshold is what decides.
    kept, _, _, _ = dedupe(src, tmp_path / "loose", embedding_model=str(models["keras"]),
                           embedding_threshold=float(same.min()) - 1e-3, **ONLY_EMBEDDING)
    assert len(kept) == 1


def test_saved_model_from_gcs_gives_the_same_groups(models, make_layout, tmp_path, gcs_bucket):
    src = make_layout(products())
    uri.copy_tree(str(models["saved_model"]), f"{gcs_bucket}/models/embedder")
    _, from_keras, _, _ = dedupe(src, tmp_path / "keras", embedding_model=str(models["keras"]), **ONLY_EMBEDDING)
    _, from_gcs, _, _ = dedupe(src, tmp_path / "gcs", embedding_model=f"{gcs_bucket}/models/embedder",
                               **ONLY_EMBEDDING)
    assert [(d["product_id"], d["kept_product_id"]) for d in from_gcs] == [("small", "big")]
    assert from_gcs[0]["distance"] == pytest.approx(from_keras[0]["distance"], abs=1e-5)


def test_bad_model_fails_fast_naming_the_flag(make_layout, tmp_path):
    src = make_layout(products())
    with pytest.raises(FileNotFoundError, match="--embedding-model"):
        run(DedupeConfig(str(src), str(tmp_path / "out"), embedding_model=str(tmp_path / "none.keras")))
    build_model((SIDE, SIDE * 2, 3)).save(tmp_path / "wide.keras")
    with pytest.raises(ValueError, match=r"--embedding-model=.*\[batch, S, S, 3\]"):
        run(DedupeConfig(str(src), str(tmp_path / "out"), embedding_model=str(tmp_path / "wide.keras")))
    with pytest.raises(ValueError, match="--embedding-threshold=1.5"):
        run(DedupeConfig(str(src), str(tmp_path / "out"), embedding_threshold=1.5))


def test_a_pinned_embedding_model_is_verified_before_its_graph_runs(models, make_layout, tmp_path, gcs_bucket):
    src = make_layout(products())
    hostile_model, marker = tmp_path / "hostile", tmp_path / "graph-ran"
    embedder_writing_a_file(str(hostile_model), str(marker), SIDE)
    pinned = content_digest(tree_digests(str(models["saved_model"])))
    with pytest.raises(DigestError, match="--embedding-model=.*--embedding-model-sha256.*refusing to load it"):
        run(DedupeConfig(str(src), str(tmp_path / "out"), embedding_model=str(hostile_model),
                         embedding_model_sha256=pinned, **ONLY_EMBEDDING))
    assert not marker.exists()
    load_embedding_model(str(hostile_model)).embed(np.zeros((1, SIDE, SIDE, 3), np.float32))
    assert marker.exists(), "the hostile SavedModel must really run code when called, or this test proves nothing"
    # the pinned models load, from a file, a directory and a gs:// prefix alike
    uri.copy_tree(str(models["saved_model"]), f"{gcs_bucket}/models/pinned")
    _, from_gcs, _, _ = dedupe(src, tmp_path / "gcs", embedding_model=f"{gcs_bucket}/models/pinned",
                               embedding_model_sha256=pinned, **ONLY_EMBEDDING)
    _, from_file, _, _ = dedupe(src, tmp_path / "file", embedding_model=str(models["keras"]),
                                embedding_model_sha256=file_sha256(str(models["keras"])).upper(), **ONLY_EMBEDDING)
    assert [(d["product_id"], d["kept_product_id"]) for d in from_gcs + from_file] == [("small", "big")] * 2
    with pytest.raises(ValueError, match="--embedding-model-sha256='abc': must be 64 hex digits"):
        run(DedupeConfig(str(src), str(tmp_path / "out"), embedding_model=str(models["keras"]),
                         embedding_model_sha256="abc"))


def test_a_pinned_model_swapped_after_its_check_is_not_what_runs(models, tmp_path, monkeypatch):
    """The check and the load read one private copy: a writer who swaps the shared SavedModel for a
    hostile one right after the check (a shared bucket or volume) changes nothing dedupe runs. The
    swap is made at that moment by wrapping the check, so the race is hit every time."""
    import ecom_kfp.dedupe.embedding as embedding

    shared = tmp_path / "shared"
    uri.copy_tree(str(models["saved_model"]), str(shared))
    hostile_model, marker = tmp_path / "hostile", tmp_path / "graph-ran"
    embedder_writing_a_file(str(hostile_model), str(marker), SIDE)
    check = embedding.verify_pinned

    def check_then_swap(*args, **kwargs):
        check(*args, **kwargs)
        uri.delete_tree(str(shared))
        uri.copy_tree(str(hostile_model), str(shared))

    monkeypatch.setattr(embedding, "verify_pinned", check_then_swap)
    model = load_embedding_model(str(shared), content_digest(tree_digests(str(models["saved_model"]))))
    vectors = np.asarray(model.embed(np.zeros((1, SIDE, SIDE, 3), np.float32)))
    assert not marker.exists(), "dedupe ran the SavedModel swapped in after its check"
    assert vectors.shape == (1, 8 * 4 * 4)  # the checked model's 4x4 grid of 8 channels
    assert content_digest(tree_digests(str(shared))) != content_digest(tree_digests(str(models["saved_model"])))


@pytest.mark.parametrize("block", [1, 7, 64, 4096])
def test_blocked_search_equals_all_pairs(block):
    rng = np.random.default_rng(block)
    base = l2_normalise(rng.normal(size=(60, 16)))
    vectors = l2_normalise(np.concatenate([base, base[:20] + rng.normal(scale=0.05, size=(20, 16))]))
    left, right, sim = similar_pairs(vectors, 0.95, block=block)
    full = vectors @ vectors.T
    expected = [(i, j) for i in range(80) for j in range(i + 1, 80) if full[i, j] >= 0.95]
    assert list(zip(left.tolist(), right.tolist())) == expected and len(expected) >= 20
    assert np.allclose(sim, full[left, right], atol=1e-5)
