"""``--frozen-backbone`` on the tiny dataset: features computed once, the exported model is the full one.

The backbone is the real small-cnn, with weights written by the test (the mode needs ``--weights``);
the run counts the images its backbone sees with a layer in front of it, so the per-epoch path
(3 epochs: three times the training images) cannot pass for the once-per-product one.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from ecom_kfp.contracts import features, serving
from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout
from ecom_kfp.train import TrainConfig, backbones, run
from ecom_kfp.train.config import ConfigError
from ecom_kfp.train.data import PipelineOptions, TrainingData
from ecom_kfp.train.frozen import extract_features
from ecom_kfp.train.model import BACKBONE_LAYER, IMAGE_FEATURES_INPUT, block_outputs, feature_classifier
from ecom_kfp.train.trainer import load
from tests.train.helpers import SPLIT_SIZES, backbone_weights

pytestmark = pytest.mark.slow

EPOCHS = 3
IMAGE_SIZE = 32


class CountImages(keras.layers.Layer):
    """Passes images through and adds their number to ``images`` each time the graph runs."""

    def build(self, input_shape) -> None:
        self.images = self.add_weight(shape=(), initializer="zeros", trainable=False, name="images")

    def call(self, inputs):
        self.images.assign_add(keras.ops.cast(keras.ops.shape(inputs)[0], "float32"))
        return inputs


def _counting_small_cnn(counters: list[CountImages]):
    small_cnn = backbones.REGISTRY["small-cnn"].build

    def build(image_size: int) -> keras.Model:
        counter = CountImages(name="count_images")
        counters.append(counter)
        inputs = keras.Input((image_size, image_size, 3))
        return keras.Model(inputs, small_cnn(image_size)(counter(inputs)), name="counting_small_cnn")

    return build


def _config(data: str, out: Path, **overrides) -> TrainConfig:
    base = dict(data=data, out=str(out), backbone="small-cnn", epochs=EPOCHS, batch_size=16, image_size=IMAGE_SIZE,
                learning_rate=3e-3, warmup_epochs=0.5, frozen_backbone=True,
                title_word_buckets=64, title_char_buckets=128, image_head_weight=0.5)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def frozen_run(tiny_dataset: DatasetLayout, tmp_path_factory: pytest.TempPathFactory):
    """One frozen-backbone run of a fused model with auxiliary image heads and EMA, its backbone
    counting the images it sees; ``(config, report, counted images, backbone weights file)``."""
    tmp = tmp_path_factory.mktemp("frozen")
    counters: list[CountImages] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(backbones.REGISTRY, "small-cnn", backbones.BackboneSpec(_counting_small_cnn(counters), 16))
        _, weights = backbone_weights(tmp, IMAGE_SIZE)
        config = _config(tiny_dataset.root, tmp / "model", weights=weights)
        report = run(config)
    assert len(counters) == 2  # the weights file's backbone and the run's
    return config, report, float(counters[-1].images.numpy()), weights


def test_the_backbone_runs_once_per_product_not_once_per_epoch(frozen_run) -> None:
    _, report, images, _ = frozen_run
    assert report.epochs_trained == EPOCHS and report.steps_per_epoch == SPLIT_SIZES["train"] // 16
    # Once over train and val before the first epoch, once over test in the final evaluation
    # (per epoch it would be EPOCHS x (96 + 24) + 24 = 384).
    assert images == SPLIT_SIZES["train"] + SPLIT_SIZES["val"] + SPLIT_SIZES["test"]
    assert report.backbone_feature_seconds > 0


def test_frozen_training_leaves_the_backbone_bit_identical(frozen_run) -> None:
    config, _, _, weights = frozen_run
    exported = keras.models.load_model(ModelLayout(config.out).keras_model, custom_objects={"CountImages": CountImages})
    reference = _counting_small_cnn([])(IMAGE_SIZE)
    reference.load_weights(weights)
    after, before = exported.get_layer(BACKBONE_LAYER).weights, reference.weights
    assert len(after) == len(before) > 2
    for trained, original in zip(after, before, strict=True):
        if trained.name == "images":
            continue  # the test's image counter, not a weight of the backbone
        assert np.array_equal(trained.numpy(), original.numpy()), trained.path


def test_a_frozen_run_resumes_from_its_full_model_checkpoint(frozen_run, tmp_path: Path) -> None:
    """The checkpoint holds the full model (backbone included), so a resumed frozen run loads it like
    any other, computes the features once again and trains only the epochs left."""
    config, _, _, weights = frozen_run
    out = tmp_path / "model"
    shutil.copytree(config.out, out)
    counters: list[CountImages] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(backbones.REGISTRY, "small-cnn", backbones.BackboneSpec(_counting_small_cnn(counters), 16))
        report = run(dataclasses.replace(config, out=str(out), epochs=EPOCHS + 1))
    assert (report.resumed_from_epoch, report.epochs_trained) == (EPOCHS, 1)
    # The counter is a weight too: the checkpoint brought the first run's train + val count with it.
    once = SPLIT_SIZES["train"] + SPLIT_SIZES["val"]
    assert float(counters[-1].images.numpy()) == once + once + SPLIT_SIZES["test"]
    first = keras.models.load_model(ModelLayout(config.out).keras_model, custom_objects={"CountImages": CountImages})
    resumed = keras.models.load_model(ModelLayout(str(out)).keras_model, custom_objects={"CountImages": CountImages})
    for before, after in zip(first.get_layer(BACKBONE_LAYER).weights, resumed.get_layer(BACKBONE_LAYER).weights,
                             strict=True):
        if after.name != "images":
            assert np.array_equal(before.numpy(), after.numpy()), after.path
    # The epoch it trained moved the layers after the backbone on from the first run's.
    assert not np.array_equal(first.get_layer("shared").get_weights()[0], resumed.get_layer("shared").get_weights()[0])


def _val_records(data: TrainingData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored JPEG bytes, titles and level-3 labels of the val split, in shard order."""
    ds = tf.data.TFRecordDataset(data.shards("val"), compression_type="GZIP").batch(1024)
    record = data.spec.parse(next(iter(ds)))
    return record[features.IMAGE].numpy(), record[features.TITLE].numpy(), record[data.spec.label_keys[-1]].numpy()


def test_the_exported_model_is_the_trained_head_with_the_backbone_inside(frozen_run) -> None:
    """The served SavedModel (raw bytes in) gives what the features model gives on the backbone's
    features, and its val accuracy is the one the features model reached in training."""
    import tensorflow_text  # noqa: F401 - registers the SentencePiece ops the SavedModel uses

    config, report, _, _ = frozen_run
    layout = ModelLayout(config.out)
    inputs = load(config)
    images, titles, level_3 = _val_records(inputs.data)
    serve = tf.saved_model.load(layout.saved_model).signatures[serving.SIGNATURE]
    served = serve(**{serving.INPUT_IMAGE: tf.constant(images), serving.INPUT_TITLE: tf.constant(titles)})

    exported = keras.models.load_model(layout.keras_model, custom_objects={"CountImages": CountImages})
    table = extract_features(exported, inputs.data, ["val"], inputs.tokenizer,
                             PipelineOptions(batch_size=16, image_size=IMAGE_SIZE, training=False))
    on_features = feature_classifier(exported)(table.inputs, training=False)
    for level in (1, 2, 3):
        np.testing.assert_allclose(on_features[serving.model_output(level)],
                                   served[serving.output_key(level)], rtol=1e-4, atol=1e-5)
    accuracy = float(np.mean(np.argmax(served[serving.output_key(3)], axis=1) == level_3))
    assert accuracy == pytest.approx(report.final_metrics["val_level_3_accuracy"], abs=1e-6)


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(inputs="title", weights="", image_head_weight=0.0), "--frozen-backbone=True: needs an image backbone"),
    (dict(weights=""), "--frozen-backbone=True: needs --weights"),
    (dict(freeze_backbone_epochs=2), "--freeze-backbone-epochs=2: must be 0 with --frozen-backbone"),
    (dict(frozen_backbone_until="block2_pool", frozen_backbone=False),
     "--frozen-backbone-until='block2_pool': needs --frozen-backbone"),
])
def test_frozen_backbone_refuses_what_it_cannot_do(overrides: dict, message: str, tmp_path: Path) -> None:
    settings = {"weights": "lite0.weights.h5", **overrides}
    with pytest.raises(ConfigError, match=f"^{message}"):
        _config("data", tmp_path, **settings)
    _config("data", tmp_path, **{**settings, "frozen_backbone": False, "frozen_backbone_until": "",
                                 "image_head_weight": 0.0})  # fine without it


CUT = "block2_pool"


@pytest.fixture(scope="module")
def cut_run(tiny_dataset: DatasetLayout, tmp_path_factory: pytest.TempPathFactory):
    """One ``--frozen-backbone-until block2_pool`` run of an image-only model on the real small-cnn:
    ``(config, report, the backbone it started from)``."""
    tmp = tmp_path_factory.mktemp("cut")
    start, weights = backbone_weights(tmp, IMAGE_SIZE)
    config = _config(tiny_dataset.root, tmp / "model", weights=weights, inputs="image", image_head_weight=0.0,
                     title_word_buckets=0, title_char_buckets=0, frozen_backbone_until=CUT)
    return config, run(config), start


def test_a_cut_backbone_trains_only_its_layers_after_the_cut(cut_run) -> None:
    config, report, start = cut_run
    assert report.epochs_trained == EPOCHS and report.backbone_feature_seconds > 0
    trained = keras.models.load_model(ModelLayout(config.out).keras_model).get_layer(BACKBONE_LAYER)
    names = [layer.name for layer in start.layers]
    cut = names.index(CUT)
    for layer in start.layers:
        if not layer.weights:
            continue
        after = [w.numpy() for w in trained.get_layer(layer.name).weights]
        same = all(np.array_equal(a, w.numpy()) for a, w in zip(after, layer.weights, strict=True))
        # BatchNorm's moving statistics move too: the layers after the cut train in training mode.
        assert same == (names.index(layer.name) < cut), layer.name


def test_the_exported_cut_model_is_the_trained_one_with_the_whole_backbone_inside(cut_run) -> None:
    """The served SavedModel (raw bytes in) gives what the cut model gives on the stored feature
    maps; the maps are kept in float16, so the two agree to float16's precision."""
    import tensorflow_text  # noqa: F401 - registers the SentencePiece ops the SavedModel uses

    config, _, _ = cut_run
    layout = ModelLayout(config.out)
    inputs = load(config)
    images, titles, _ = _val_records(inputs.data)
    served = tf.saved_model.load(layout.saved_model).signatures[serving.SIGNATURE](
        **{serving.INPUT_IMAGE: tf.constant(images), serving.INPUT_TITLE: tf.constant(titles)})
    exported = keras.models.load_model(layout.keras_model)
    table = extract_features(exported, inputs.data, ["val"], inputs.tokenizer,
                             PipelineOptions(batch_size=16, image_size=IMAGE_SIZE, training=False), CUT)
    maps = table.inputs[IMAGE_FEATURES_INPUT]
    assert maps.dtype == tf.float16 and maps.shape[1:] == (8, 8, 64)  # 32 px, pooled twice, block 2's width
    on_maps = feature_classifier(exported, CUT)(
        {**table.inputs, IMAGE_FEATURES_INPUT: tf.cast(maps, tf.float32)}, training=False)
    for level in (1, 2, 3):
        np.testing.assert_allclose(on_maps[serving.model_output(level)], served[serving.output_key(level)],
                                   atol=2e-3)


def test_block_outputs_are_where_a_backbone_can_be_cut() -> None:
    lite0 = backbones.build_backbone("efficientnet-lite0", 32)
    cuts = block_outputs(lite0)
    assert {"block7_add", "block8_project_bn", "head_relu6"} <= set(cuts)
    # Inside a residual block the layers after also read the block's input.
    assert "block9_expand_relu6" not in cuts and "block9_project_bn" not in cuts
    assert block_outputs(backbones.build_backbone("small-cnn", 32)) == [
        "rescale", "block1_pool", "block2_pool", "block3_pool", "block4_relu"]
    # keras.applications' residual networks are cut between their residual blocks.
    resnet50 = block_outputs(backbones.build_backbone("resnet50", 32))
    assert {"conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"} <= set(resnet50)
    assert "conv4_block6_1_relu" not in resnet50


@pytest.mark.parametrize(("backbone", "cut", "message"), [
    ("small-cnn", "block9_pool", "'block9_pool' is not a layer of the backbone .* its blocks' outputs are rescale, "
                                 "block1_pool, block2_pool, block3_pool, block4_relu$"),
    ("resnet-small", "stage1_block2_1_relu", "'stage1_block2_1_relu' is not a layer of the backbone .* "
                                             "stage1_block1_out, stage1_block2_out"),
])
def test_a_layer_the_backbone_cannot_be_cut_at_is_a_config_error(tiny_dataset: DatasetLayout, backbone: str, cut: str,
                                                                 message: str, tmp_path: Path) -> None:
    _, weights = backbone_weights(tmp_path, IMAGE_SIZE, backbone)
    config = _config(tiny_dataset.root, tmp_path / "model", weights=weights, backbone=backbone, inputs="image",
                     image_head_weight=0.0, frozen_backbone_until=cut)
    with pytest.raises(ConfigError, match=f"^--frozen-backbone-until='{cut}': {message}"):
        run(config)
