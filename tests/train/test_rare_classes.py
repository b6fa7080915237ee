"""Rare classes (issue 21): a class seen twice in training is a class the model can answer, end to
end through the real TFRecord build, training stage and serving signature; and the logit-adjusted
loss favours rare classes by exactly the log-prior margin."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts import labels, serving, tables
from ecom_kfp.contracts.layouts import DatasetLayout, DedupeLayout, ModelLayout
from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig
from ecom_kfp.tfrecord_build.inputs import Product
from ecom_kfp.tfrecord_build.splits import assign_splits
from tests.train.helpers import LEAVES, product_image

pytestmark = pytest.mark.slow

RARE_PATH = ("Footwear", "Shoes", "Mules")
RARE_TITLE = "Aldo women tan leather slip on mules"
FRACTIONS = (0.7, 0.15, 0.15)
SALT = "ecom-kfp"


def _rare_ids() -> tuple[list[str], str]:
    """Two product ids the build's split hash puts in train and one it puts in test (each its own group)."""
    candidates = [Product(f"rare-{i}", "t", RARE_PATH, 1.0, "u", f"rare-{i}") for i in range(200)]
    split_of = assign_splits(candidates, FRACTIONS, salt=SALT)
    train = [pid for pid, split in split_of.items() if split == "train"][:2]
    test = next(pid for pid, split in split_of.items() if split == "test")
    return train, test


def _catalog(root: Path) -> tuple[DedupeLayout, str]:
    """84 products of the six common leaves and three of a rare leaf; returns the layout and the rare test id."""
    rng = random.Random(3)
    images = root / "images"
    images.mkdir(parents=True)
    items = [(f"p{i}", f"Puma men {rng.choice(['red', 'blue', 'black'])} {LEAVES[i % 6][2]}", LEAVES[i % 6][0], i % 6)
             for i in range(84)]
    train_ids, test_id = _rare_ids()
    items += [(pid, RARE_TITLE, RARE_PATH, 4) for pid in (*train_ids, test_id)]
    rows = []
    for pid, title, path, leaf in items:
        image = images / f"{pid}.jpg"
        image.write_bytes(product_image(LEAVES[leaf][1], leaf, rng, (60, 80)))
        rows.append({"product_id": pid, "title": title, "title_normalized": title.lower(), "category_path": list(path),
                     "business_value": 1.0, "image_uri": str(image), "group_id": pid, "group_size": 1})
    layout = DedupeLayout(str(root / "products"))
    uri.write_parquet(tables.from_rows(rows, tables.DEDUPED_PRODUCTS), layout.products)
    return layout, test_id


def test_a_class_with_two_training_examples_is_predicted(tmp_path: Path) -> None:
    from ecom_kfp.tfrecord_build.stage import run as build
    from ecom_kfp.train.config import TrainConfig
    from ecom_kfp.train.stage import run as train

    products, _ = _catalog(tmp_path / "catalog")
    data = DatasetLayout(str(tmp_path / "data"))
    build(TFRecordBuildConfig(products=products.root, out=data.root, image_size=32, max_levels=3, min_class_count=1,
                              spm_vocab_size=300, doc2vec_dim=16, doc2vec_epochs=5, workers=1, progress=False))
    manifest = uri.read_json(data.manifest)
    rare = labels.SEPARATOR.join(RARE_PATH)
    assert manifest["counts"]["train"]["level_3"][rare] == 2  # the split chosen above, and kept as a class
    assert manifest["counts"]["test"]["level_3"][rare] == 1

    model = ModelLayout(str(tmp_path / "model"))
    train(TrainConfig(data=data.root, out=model.root, inputs="title", epochs=30, batch_size=16, learning_rate=3e-3,
                      title_word_buckets=1024, ema_momentum=0.0, logit_adjustment=1.0, fit_on_val=True, resume=False))
    vocabulary = labels.load_all(model.labels, 3)[2]
    signature = serving.load_signature(model.saved_model)
    outputs = signature(**{serving.INPUT_IMAGE: np.array([(tmp_path / "catalog" / "images" / "p0.jpg").read_bytes()]),
                           serving.INPUT_TITLE: np.array([RARE_TITLE.replace("Aldo", "Clarks")])})
    probabilities = outputs[serving.output_key(3)].numpy()[0]
    assert vocabulary.classes[int(probabilities.argmax())] == rare, dict(zip(vocabulary.classes, probabilities.round(3)))


def test_folding_threshold_still_folds_when_asked(tmp_path: Path) -> None:
    """With the old threshold (5) the same rare class has no label of its own: the reason for min_class_count=1."""
    from ecom_kfp.tfrecord_build.labels import LabelSpace

    paths = [LEAVES[i % 6][0] for i in range(84)] + [RARE_PATH] * 2
    assert not LabelSpace.build(paths, 3, 5).vocabularies[2].contains(labels.SEPARATOR.join(RARE_PATH))
    assert LabelSpace.build(paths, 3, 1).vocabularies[2].contains(labels.SEPARATOR.join(RARE_PATH))


def test_logit_adjusted_loss_adds_the_log_prior_to_the_log_probabilities() -> None:
    import keras

    from ecom_kfp.train.model import SmoothedSparseCrossentropy, logit_adjustment

    prior = logit_adjustment([90, 8, 2, 0], 1.0)
    assert prior[0] > prior[1] > prior[2] and prior[3] == prior[0]  # nothing learned: no favour
    assert logit_adjustment([90, 8, 2], 0.0) is None
    assert logit_adjustment([0, 0, 0], 1.0) is None  # a manifest with bare split totals
    probabilities = np.array([[0.4, 0.3, 0.2, 0.1]], "float32")
    adjusted = np.log(probabilities) + np.array(prior, "float32")
    expected = -(adjusted[0, 2] - np.log(np.exp(adjusted).sum()))
    loss = SmoothedSparseCrossentropy(0.0, prior)(np.array([2]), probabilities)
    assert float(keras.ops.convert_to_numpy(loss)) == pytest.approx(expected, rel=1e-5)
    plain = SmoothedSparseCrossentropy(0.0)(np.array([2]), probabilities)
    assert float(keras.ops.convert_to_numpy(plain)) == pytest.approx(-np.log(0.2), rel=1e-5)
