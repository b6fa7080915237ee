"""``--fusion late`` on the tiny dataset: each branch trained by its own loss, the served heads add
their logits, and what is served is what training measured.

The run uses ``--frozen-backbone`` (the mode late fusion was chosen with on myntra-dev) over the
real small-cnn, its weights written by the test.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from ecom_kfp.contracts import features, serving
from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout
from ecom_kfp.train import TrainConfig, run
from ecom_kfp.train.config import ConfigError
from ecom_kfp.train.data import PipelineOptions, make_dataset
from ecom_kfp.train.model import branch_classifier
from ecom_kfp.train.trainer import load
from tests.train.helpers import backbone_weights

pytestmark = pytest.mark.slow

IMAGE_SIZE = 32
WEIGHT = 0.5


def _config(data: str, out: Path, **overrides) -> TrainConfig:
    base = dict(data=data, out=str(out), backbone="small-cnn", epochs=3, batch_size=16, image_size=IMAGE_SIZE,
                learning_rate=3e-3, warmup_epochs=0.5, title_word_buckets=64, title_char_buckets=128,
                fusion="late", late_fusion_weight=WEIGHT)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def late_run(tiny_dataset: DatasetLayout, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("late")
    _, weights = backbone_weights(tmp, IMAGE_SIZE)
    config = _config(tiny_dataset.root, tmp / "model", weights=weights, frozen_backbone=True)
    return config, run(config)


def test_each_branch_is_trained_by_its_own_loss_and_the_served_heads_by_none(late_run) -> None:
    _, report = late_run
    metrics = report.final_metrics
    for level in (1, 2, 3):
        assert f"title_level_{level}_loss" in metrics and f"image_level_{level}_loss" in metrics
        assert f"level_{level}_loss" not in metrics
        assert f"val_level_{level}_accuracy" in metrics  # the served heads are still measured


def test_the_served_heads_multiply_the_title_by_the_weighted_image(late_run) -> None:
    """The exported model's level heads are ``p_title * p_image ** w`` renormalised, from its own
    branches alone (:func:`branch_classifier`), and the SavedModel (raw bytes in) reaches the val
    accuracy training reported."""
    import tensorflow_text  # noqa: F401 - registers the SentencePiece ops the SavedModel uses

    config, report = late_run
    layout = ModelLayout(config.out)
    inputs = load(config)
    x, _ = next(iter(make_dataset(inputs.data, "val", inputs.tokenizer,
                                  PipelineOptions(batch_size=1024, image_size=IMAGE_SIZE, training=False))))
    exported = keras.models.load_model(layout.keras_model)
    served = exported(x)
    # Each branch takes only its own inputs.
    title, image = (m({k: x[k] for k in m.input}) for m in (branch_classifier(exported, b, 3) for b in ("title", "image")))
    for level in (1, 2, 3):
        key = serving.model_output(level)
        product = np.asarray(title[key], np.float64) * np.asarray(image[key], np.float64) ** WEIGHT
        np.testing.assert_allclose(served[key], product / product.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)

    ds = tf.data.TFRecordDataset(inputs.data.shards("val"), compression_type="GZIP").batch(1024)
    record = inputs.data.spec.parse(next(iter(ds)))
    serve = tf.saved_model.load(layout.saved_model).signatures[serving.SIGNATURE]
    served = serve(**{serving.INPUT_IMAGE: record[features.IMAGE], serving.INPUT_TITLE: record[features.TITLE]})
    level_3 = record[inputs.data.spec.label_keys[-1]].numpy()
    accuracy = float(np.mean(np.argmax(served[serving.output_key(3)], axis=1) == level_3))
    assert accuracy == pytest.approx(report.final_metrics["val_level_3_accuracy"], abs=1e-6)


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(inputs="title"), "--fusion='late': needs --inputs fused, got title"),
    (dict(image_head_weight=0.5), "--image-head-weight=0.5: must be 0 with --fusion late"),
    (dict(title_dropout=0.3), "--title-dropout=0.3: must be 0 with --fusion late"),
    (dict(late_fusion_weight=-0.1), "--late-fusion-weight=-0.1: must be >= 0"),
])
def test_late_fusion_refuses_what_it_cannot_do(overrides: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        _config("data", tmp_path, **overrides)
    _config("data", tmp_path, **{**overrides, "fusion": "joint", "late_fusion_weight": 0.4})
