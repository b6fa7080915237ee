"""The product classifier: image and/or title features, one softmax head per taxonomy level.

:class:`ProductClassifier` is a functional ``keras.Model`` whose ``train_step`` averages
gradients across Horovod ranks before applying them. Keras 3 breaks
``hvd.DistributedGradientTape``/``DistributedOptimizer`` (DESIGN.md), so the reduction is a
plain function, :attr:`ProductClassifier.gradient_reducer`, called between ``tape.gradient`` and
``optimizer.apply``; it is the identity in a single process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ecom_kfp.train.backbones import build_backbone
from ecom_kfp.train.data import IMAGE_INPUT, TITLE_INPUT, output_name
from ecom_kfp.train.text import PAD_ID

GradientReducer = Callable[[list[tf.Tensor]], list[tf.Tensor]]
BACKBONE_LAYER = "backbone"
EMBEDDING_LAYER = "title_embedding"


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of the classifier.

    Attributes:
        num_classes: Classes per level, level 1 first.
        inputs: ``fused``, ``image`` or ``title``.
        backbone: Backbone registry name (unused for ``title``).
        image_size: Square input side.
        vocab_size: Token ids the title branch embeds (pieces + padding).
        max_title_tokens: Padded title length.
        embedding_dim: Piece embedding size.
        hidden_units: Width of the fused dense layer.
        dropout: Dropout before the heads.
    """

    num_classes: Sequence[int]
    inputs: str
    backbone: str
    image_size: int
    vocab_size: int
    max_title_tokens: int
    embedding_dim: int
    hidden_units: int = 256
    dropout: float = 0.2


class ProductClassifier(keras.Model):
    """Functional classifier whose gradients pass through :attr:`gradient_reducer`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gradient_reducer: GradientReducer = list

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)  # loss scaling under mixed precision
        variables = self.trainable_variables
        gradients = self.gradient_reducer(tape.gradient(scaled_loss, variables))
        self.optimizer.apply(gradients, variables)
        batch = tf.shape(next(iter(x.values())))[0]
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=batch)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def build_classifier(spec: ModelSpec, embeddings: np.ndarray | None = None) -> ProductClassifier:
    """Build the classifier; ``embeddings`` (``[vocab_size, embedding_dim]``) seeds the title branch.

    Both inputs always exist, so every model fits the same input pipeline and serving signature;
    an image-only or title-only model simply does not read the other.
    """
    image = keras.Input((spec.image_size, spec.image_size, 3), name=IMAGE_INPUT)
    tokens = keras.Input((spec.max_title_tokens,), dtype="int32", name=TITLE_INPUT)
    branches = []
    if spec.inputs in ("fused", "image"):
        backbone = build_backbone(spec.backbone, spec.image_size)
        backbone.name = BACKBONE_LAYER
        branches.append(backbone(image))
    if spec.inputs in ("fused", "title"):
        branches.append(_title_branch(tokens, spec))
    features = branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="fuse")(branches)
    features = keras.layers.Dense(spec.hidden_units, activation="relu", name="shared")(features)
    features = keras.layers.Dropout(spec.dropout, name="shared_dropout")(features)
    outputs, parent = {}, None
    for level, classes in enumerate(spec.num_classes, start=1):
        # A level sees its parent's distribution: "Men > Topwear" constrains the article type.
        head_input = features if parent is None else keras.layers.Concatenate(name=f"level_{level}_input")([features, parent])
        parent = keras.layers.Dense(classes, activation="softmax", dtype="float32", name=output_name(level))(head_input)
        outputs[output_name(level)] = parent
    model = ProductClassifier(inputs={IMAGE_INPUT: image, TITLE_INPUT: tokens}, outputs=outputs, name="product_classifier")
    if embeddings is not None and spec.inputs != "image":
        model.get_layer(EMBEDDING_LAYER).set_weights([embeddings])
    return model


def _title_branch(tokens: keras.KerasTensor, spec: ModelSpec) -> keras.KerasTensor:
    """Masked mean of piece embeddings (bag of pieces) plus max-pooled bigram/trigram filters."""
    embedded = keras.layers.Embedding(spec.vocab_size, spec.embedding_dim, name=EMBEDDING_LAYER)(tokens)
    # An explicit mask (not mask_zero) so the mean skips padding while the convolution, which
    # cannot take a mask, does not warn about dropping one.
    mean = keras.layers.GlobalAveragePooling1D(name="title_mean")(embedded, mask=keras.ops.not_equal(tokens, PAD_ID))
    grams = keras.layers.Conv1D(2 * spec.embedding_dim, 3, padding="same", activation="relu", name="title_ngrams")(embedded)
    peak = keras.layers.GlobalMaxPooling1D(name="title_max")(grams)
    return keras.layers.Concatenate(name="title_features")([mean, peak])


def plain_functional(model: keras.Model) -> keras.Model:
    """The same layers as a plain ``keras.Model``: loads anywhere without this package's classes."""
    return keras.Model(model.input, model.output, name=model.name)


def set_backbone_trainable(model: keras.Model, trainable: bool) -> bool:
    """Freeze or unfreeze the image backbone; False when the model has none."""
    try:
        model.get_layer(BACKBONE_LAYER).trainable = trainable
    except ValueError:
        return False
    return True
