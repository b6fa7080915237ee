"""ImageNet weights for efficientnet-lite0, read without PyTorch from the checkpoint a package ships."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout
from ecom_kfp.train import TrainConfig, run
from ecom_kfp.train.backbones import build_backbone
from ecom_kfp.train.config import IMAGENET_WEIGHTS, ConfigError
from ecom_kfp.train.model import BACKBONE_LAYER
from ecom_kfp.train.pretrained import default_checkpoint, load_lite0_imagenet, main, read_legacy_state_dict

#: ImageNet-1k classes a correctly loaded model gives Myntra pictures of these article types.
IMAGENET = {"Sports Shoes": 770, "Sandals": 774, "Jeans": 608, "Backpacks": 414, "Sunglasses": 836}


def first_of_each(myntra_dir: Path, article_types) -> dict[str, Path]:
    with open(myntra_dir / "styles.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {t: myntra_dir / "images" / f"{next(r['id'] for r in rows if r['articleType'] == t)}.jpg" for t in article_types}


def test_converted_backbone_classifies_product_pictures_as_imagenet_does(myntra_dir: Path, tmp_path: Path):
    """Loaded through the saved .weights.h5 that --weights takes, the backbone plus the
    checkpoint's own classifier names the obvious ImageNet class of real product pictures: a
    transposed kernel or a missed layer would not."""
    out = tmp_path / "lite0.weights.h5"
    main([str(out)])
    backbone = build_backbone("efficientnet-lite0", 224)
    backbone.load_weights(out)
    state = read_legacy_state_dict(default_checkpoint())
    pictures = first_of_each(myntra_dir, IMAGENET)
    x = np.stack([np.asarray(Image.open(p).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC), np.float32)
                  for p in pictures.values()])
    logits = backbone.predict(x, verbose=0) @ state["_fc.weight"].T + state["_fc.bias"]
    assert logits.argmax(axis=1).tolist() == list(IMAGENET.values())


def test_every_backbone_layer_with_weights_gets_them():
    backbone = build_backbone("efficientnet-lite0", 64)
    before = [w.copy() for w in backbone.get_weights()]
    load_lite0_imagenet(backbone)
    changed = [not np.array_equal(a, b) for a, b in zip(before, backbone.get_weights(), strict=True)]
    # BatchNormalization starts at gamma 1 / beta 0 / mean 0 / var 1: a layer left out stays there.
    assert all(changed)


def test_reader_refuses_anything_but_a_state_dict(tmp_path: Path):
    """The reader unpickles a checkpoint's structure, so a pickle that would call a function is an error."""
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(header, f)
        f.write(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        read_legacy_state_dict(evil)
    evil_header = tmp_path / "evil_header.pth"
    evil_header.write_bytes(b"cos\nsystem\n(S'true'\ntR.")  # in place of the magic number
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        read_legacy_state_dict(evil_header)
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + bytes(32))
    with pytest.raises(ValueError, match="zip-format"):
        read_legacy_state_dict(zipped)


def test_reader_keeps_shapes_and_strides():
    state = read_legacy_state_dict(default_checkpoint())
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert len([k for k in state if k.endswith("_depthwise_conv.weight")]) == 16


@pytest.mark.slow
def test_weights_imagenet_trains_on_the_shipped_checkpoint_with_no_file(tiny_dataset: DatasetLayout, tmp_path: Path):
    """``--weights imagenet`` (what a pipeline run passes: no weights file to upload) starts the
    backbone from the packaged checkpoint; frozen, it is exported exactly as loaded."""
    import keras

    config = TrainConfig(data=tiny_dataset.root, out=str(tmp_path / "model"), backbone="efficientnet-lite0",
                         image_size=32, epochs=1, batch_size=16, learning_rate=3e-3, weights=IMAGENET_WEIGHTS,
                         frozen_backbone=True, fusion="late", title_word_buckets=64, title_char_buckets=128)
    report = run(config)
    assert report.epochs_trained == 1
    reference = build_backbone("efficientnet-lite0", 32)
    load_lite0_imagenet(reference)
    exported = keras.models.load_model(ModelLayout(config.out).keras_model).get_layer(BACKBONE_LAYER)
    assert len(exported.weights) == len(reference.weights) > 100
    for trained, imagenet in zip(exported.weights, reference.weights, strict=True):
        assert np.array_equal(trained.numpy(), imagenet.numpy()), trained.path


@pytest.mark.parametrize("backbone", ["small-cnn", ""])  # "": the cpu-small preset's, small-cnn
def test_weights_imagenet_is_refused_for_another_backbone(backbone: str, tmp_path: Path):
    with pytest.raises(ConfigError, match=r"--weights='imagenet': fits --backbone efficientnet-lite0 only, "
                                          r"but the backbone is small-cnn"):
        TrainConfig(data=str(tmp_path), out=str(tmp_path / "model"), backbone=backbone, weights=IMAGENET_WEIGHTS)
