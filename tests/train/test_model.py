"""The classifier builds for every backbone and input mode, and saves as a plain Keras model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ecom_kfp.train import backbones
from ecom_kfp.train.config import BACKBONE_NAMES
from ecom_kfp.train.model import (
    ModelSpec,
    ProductClassifier,
    SmoothedSparseCrossentropy,
    branch_classifier,
    build_classifier,
    plain_functional,
    set_backbone_trainable,
)
from ecom_kfp.train.text import MAX_CHAR_GRAMS

CLASSES = [3, 5, 7]


def _inputs(size: int) -> dict[str, np.ndarray]:
    return {"image": np.full((2, size, size, 3), 128.0, np.float32),
            "title_tokens": np.array([[5, 9, 2] + [0] * 5, [3] + [0] * 7], np.int32)}


def test_registry_matches_config_names() -> None:
    assert tuple(backbones.REGISTRY) == BACKBONE_NAMES


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_every_backbone_builds_and_predicts_distributions(name: str) -> None:
    size = backbones.REGISTRY[name].min_image_size
    model = build_classifier(ModelSpec(CLASSES, "fused", name, size, vocab_size=20, max_title_tokens=8, embedding_dim=4))
    out = model(_inputs(size))
    for level, classes in enumerate(CLASSES, start=1):
        probs = np.asarray(out[f"level_{level}"])
        assert probs.shape == (2, classes)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)


def test_image_size_below_backbone_minimum_names_the_flag() -> None:
    with pytest.raises(ValueError, match="--image-size 40 is below xception"):
        backbones.build_backbone("xception", 40)


@pytest.mark.parametrize("inputs", ["image", "title"])
def test_single_branch_models_ignore_the_other_input(inputs: str) -> None:
    model = build_classifier(ModelSpec(CLASSES, inputs, "small-cnn", 16, vocab_size=20, max_title_tokens=8, embedding_dim=4))
    x = _inputs(16)
    changed = dict(x)
    if inputs == "image":
        changed["title_tokens"] = np.ones_like(x["title_tokens"])
    else:
        changed["image"] = np.zeros_like(x["image"])
    np.testing.assert_allclose(np.asarray(model(x)["level_3"]), np.asarray(model(changed)["level_3"]), rtol=1e-6)
    assert set_backbone_trainable(model, False) is (inputs == "image")


def test_title_embedding_starts_from_given_vectors_and_padding_is_ignored() -> None:
    vectors = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    spec = ModelSpec(CLASSES, "title", "small-cnn", 16, vocab_size=20, max_title_tokens=8, embedding_dim=4)
    model = build_classifier(spec, vectors)
    np.testing.assert_array_equal(model.get_layer("title_embedding").get_weights()[0], vectors)
    mean = keras.Model(model.inputs, model.get_layer("title_mean").output)
    tokens = np.array([[5, 9, 0, 0, 0, 0, 0, 0]], np.int32)
    got = np.asarray(mean({"image": np.zeros((1, 16, 16, 3), np.float32), "title_tokens": tokens}))
    np.testing.assert_allclose(got[0], vectors[[5, 9]].mean(axis=0), rtol=1e-5)


def test_plain_functional_round_trips_through_model_keras(tmp_path) -> None:
    model = build_classifier(ModelSpec(CLASSES, "fused", "small-cnn", 16, vocab_size=20, max_title_tokens=8, embedding_dim=4))
    path = tmp_path / "model.keras"
    plain_functional(model, len(CLASSES)).save(path)
    loaded = keras.models.load_model(path)
    assert not isinstance(loaded, ProductClassifier)
    np.testing.assert_allclose(np.asarray(loaded(_inputs(16))["level_2"]), np.asarray(model(_inputs(16))["level_2"]), rtol=1e-5)


def _hashed(ids: list[int], length: int) -> np.ndarray:
    """Two titles' hash ids, 0-padded to ``length``: ``ids`` and a lone 3."""
    return np.array([ids + [0] * (length - len(ids)), [3] + [0] * (length - 1)], np.int32)


@pytest.mark.parametrize("name", ["words", "chars"])
def test_hash_inputs_change_the_prediction_and_their_padding_is_ignored(name: str) -> None:
    spec = ModelSpec(CLASSES, "title", "small-cnn", 16, vocab_size=20, max_title_tokens=8, embedding_dim=4, word_buckets=50,
                     char_buckets=60)
    model = build_classifier(spec)
    length = 8 if name == "words" else MAX_CHAR_GRAMS
    x = {**_inputs(16), "title_words": _hashed([5], 8), "title_chars": _hashed([9], MAX_CHAR_GRAMS),
         f"title_{name}": _hashed([7, 11], length)}
    mean = keras.Model(model.inputs, model.get_layer(f"title_{name[:-1]}_mean").output)
    table = model.get_layer(f"title_{name[:-1]}_embedding").get_weights()[0]
    np.testing.assert_allclose(np.asarray(mean(x))[0], table[[7, 11]].mean(axis=0), rtol=1e-5)
    other = {**x, f"title_{name}": _hashed([8, 12], length)}
    assert not np.allclose(np.asarray(model(x)["level_3"])[0], np.asarray(model(other)["level_3"])[0])


def test_smoothed_crossentropy_matches_the_one_hot_formula() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 2])
    targets = np.eye(3)[labels] * 0.7 + 0.3 / 3
    expected = -(targets * np.log(probabilities)).sum(axis=1).mean()
    assert float(SmoothedSparseCrossentropy(0.3)(labels, probabilities)) == pytest.approx(expected, rel=1e-5)
    plain = -np.log(probabilities[[0, 1], labels]).mean()
    assert float(SmoothedSparseCrossentropy(0.0)(labels, probabilities)) == pytest.approx(plain, rel=1e-5)


def test_a_title_without_tokens_still_gets_finite_probabilities(tmp_path) -> None:
    spec = ModelSpec(CLASSES, "title", "small-cnn", 16, vocab_size=20, max_title_tokens=8, embedding_dim=4, word_buckets=50,
                     char_buckets=60)
    empty = {**_inputs(16), "title_tokens": np.zeros((2, 8), np.int32), "title_words": np.zeros((2, 8), np.int32),
             "title_chars": np.zeros((2, MAX_CHAR_GRAMS), np.int32)}
    path = tmp_path / "model.keras"
    plain_functional(build_classifier(spec), len(CLASSES)).save(path)
    probs = np.asarray(keras.models.load_model(path)(empty)["level_3"])
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)


def test_title_dropout_hides_whole_titles_in_training_only() -> None:
    spec = ModelSpec(CLASSES, "fused", "small-cnn", 16, vocab_size=20, max_title_tokens=8, embedding_dim=4,
                     title_dropout=0.5)
    model = build_classifier(spec)
    x = {"image": np.full((64, 16, 16, 3), 128.0, np.float32),
         "title_tokens": np.tile(np.array([[5, 9, 2, 0, 0, 0, 0, 0]], np.int32), (64, 1))}
    title = keras.Model(model.inputs, model.get_layer("title_features").output)(x)
    hidden = np.asarray(keras.Model(model.inputs, model.get_layer("title_modality_dropout").output)(x, training=True))
    dropped = np.all(hidden == 0.0, axis=1)
    assert 0 < dropped.sum() < 64  # whole rows go, per example, not single features
    np.testing.assert_allclose(hidden[~dropped], np.asarray(title)[~dropped] * 2.0, rtol=1e-5)
    served = keras.Model(model.inputs, model.get_layer("title_modality_dropout").output)(x)
    np.testing.assert_allclose(np.asarray(served), np.asarray(title), rtol=1e-6)


def test_title_dropout_exists_only_in_fused_models() -> None:
    for inputs in ("image", "title"):
        model = build_classifier(ModelSpec(CLASSES, inputs, "small-cnn", 16, vocab_size=20, max_title_tokens=8,
                                           embedding_dim=4, title_dropout=0.5))
        assert "title_modality_dropout" not in [layer.name for layer in model.layers]


def test_image_heads_read_the_image_alone_and_are_not_served(tmp_path) -> None:
    spec = ModelSpec(CLASSES, "fused", "small-cnn", 16, vocab_size=20, max_title_tokens=8, embedding_dim=4,
                     image_heads=True)
    model = build_classifier(spec)
    x = _inputs(16)
    out = model(x)
    assert set(out) == {f"{prefix}level_{k}" for prefix in ("", "image_") for k in (1, 2, 3)}
    other_title = {**x, "title_tokens": np.ones_like(x["title_tokens"])}
    np.testing.assert_allclose(np.asarray(model(other_title)["image_level_3"]), np.asarray(out["image_level_3"]), rtol=1e-6)
    path = tmp_path / "model.keras"
    plain_functional(model, len(CLASSES)).save(path)
    loaded = keras.models.load_model(path)
    served = loaded(x)
    assert set(served) == {"level_1", "level_2", "level_3"}
    np.testing.assert_allclose(np.asarray(served["level_3"]), np.asarray(out["level_3"]), rtol=1e-5)


def test_image_heads_exist_only_in_fused_models() -> None:
    for inputs in ("image", "title"):
        model = build_classifier(ModelSpec(CLASSES, inputs, "small-cnn", 16, vocab_size=20, max_title_tokens=8,
                                           embedding_dim=4, image_heads=True))
        assert set(model.output_names) == {"level_1", "level_2", "level_3"}


def _late(weight: float) -> ProductClassifier:
    return build_classifier(ModelSpec(CLASSES, "fused", "small-cnn", 16, vocab_size=20, max_title_tokens=8,
                                      embedding_dim=4, fusion="late", late_fusion_weight=weight))


@pytest.mark.parametrize("weight", [0.0, 0.4, 1.0])
def test_late_fusion_serves_the_title_times_the_weighted_image(weight: float, tmp_path) -> None:
    keras.utils.set_random_seed(3)
    model = _late(weight)
    x = {"image": np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32),
         "title_tokens": _inputs(16)["title_tokens"]}
    out = {k: np.asarray(v, np.float64) for k, v in model(x).items()}
    assert set(out) == {f"{prefix}level_{k}" for prefix in ("", "image_", "title_") for k in (1, 2, 3)}
    for level in (1, 2, 3):
        product = out[f"title_level_{level}"] * out[f"image_level_{level}"] ** weight
        np.testing.assert_allclose(out[f"level_{level}"], product / product.sum(axis=1, keepdims=True), rtol=1e-4)
    path = tmp_path / "model.keras"
    plain_functional(model, len(CLASSES)).save(path)
    served = keras.models.load_model(path)(x)  # standard layers only: loads without this package
    assert set(served) == {"level_1", "level_2", "level_3"}
    np.testing.assert_allclose(np.asarray(served["level_3"]), out["level_3"], rtol=1e-5)


def test_late_fusion_branches_read_only_their_own_input() -> None:
    model = _late(0.4)
    x = _inputs(16)
    out = model(x)
    other_title = model({**x, "title_tokens": np.ones_like(x["title_tokens"])})
    other_image = model({**x, "image": np.zeros_like(x["image"])})
    for level in (1, 2, 3):
        np.testing.assert_array_equal(np.asarray(other_title[f"image_level_{level}"]), np.asarray(out[f"image_level_{level}"]))
        np.testing.assert_array_equal(np.asarray(other_image[f"title_level_{level}"]), np.asarray(out[f"title_level_{level}"]))
    assert not np.allclose(np.asarray(other_image["level_3"]), np.asarray(out["level_3"]))


def test_joint_models_keep_their_layer_names() -> None:
    """Checkpoints and served models written before late fusion existed must still load."""
    model = build_classifier(ModelSpec(CLASSES, "fused", "small-cnn", 16, vocab_size=20, max_title_tokens=8,
                                       embedding_dim=4))
    names = {layer.name for layer in model.layers}
    assert {"fuse", "shared", "shared_dropout", "level_1", "level_2_input", "level_3"} <= names
    assert not any(name.startswith(("title_level", "image_level")) or name.endswith("_dense") for name in names)
    with pytest.raises(ValueError):  # no branch of its own to take apart
        branch_classifier(model, "title", len(CLASSES))
