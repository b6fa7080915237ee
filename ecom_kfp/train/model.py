"""The product classifier: image and/or title features, one softmax head per taxonomy level.

:class:`ProductClassifier` is a functional ``keras.Model`` whose ``train_step`` averages
gradients across Horovod ranks before applying them. Keras 3 breaks
``hvd.DistributedGradientTape``/``DistributedOptimizer`` (docs/design.md), so the reduction is a
plain function, :attr:`ProductClassifier.gradient_reducer`, called between ``tape.gradient`` and
``optimizer.apply``; it is the identity in a single process.

The train step also augments the batch's images on the accelerator (:attr:`ProductClassifier.augmentation`,
:mod:`ecom_kfp.train.augment`) and, with ``--jit-compile``, runs the forward and backward pass
under XLA while the allreduce (Horovod ops have no XLA kernels in our build) and the update stay
outside it. Under ``mixed_float16`` the loss is scaled before ``tape.gradient`` and the still-scaled
gradients are averaged, so every rank's ``LossScaleOptimizer`` sees the same finite check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ecom_kfp.contracts.serving import MODEL_IMAGE_INPUT as IMAGE_INPUT
from ecom_kfp.contracts.serving import MODEL_TITLE_CHARS_INPUT as TITLE_CHARS_INPUT
from ecom_kfp.contracts.serving import MODEL_TITLE_INPUT as TITLE_INPUT
from ecom_kfp.contracts.serving import MODEL_TITLE_WORDS_INPUT as TITLE_WORDS_INPUT
from ecom_kfp.contracts.serving import model_branch_head as branch_head_name
from ecom_kfp.contracts.serving import model_image_head as image_head_name
from ecom_kfp.contracts.serving import model_output as output_name
from ecom_kfp.train.backbones import build_backbone
from ecom_kfp.train.text import MAX_CHAR_GRAMS, PAD_ID

GradientReducer = Callable[[list[tf.Tensor]], list[tf.Tensor]]
#: ``(images, step) -> images``, run on each training batch (e.g. :class:`~ecom_kfp.train.augment.FlipShift`).
Augmentation = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
BACKBONE_LAYER = "backbone"
#: A pass-through after the backbone, so its output in the model's graph has a layer of its own to
#: be asked for (:func:`feature_classifier`); the backbone's own ``output`` is the one inside it.
BACKBONE_FEATURES_LAYER = "backbone_features"
#: Input of :func:`feature_classifier`: the backbone's pooled features of each image (or, with a
#: cut, its feature map at that layer).
IMAGE_FEATURES_INPUT = "image_features"
EMBEDDING_LAYER = "title_embedding"
WORD_EMBEDDING_LAYER = "title_word_embedding"
CHAR_EMBEDDING_LAYER = "title_char_embedding"


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of the classifier.

    Attributes:
        num_classes: Classes per level, level 1 first.
        inputs: ``fused``, ``image`` or ``title``.
        backbone: Backbone registry name (unused for ``title``).
        image_size: Square input side.
        vocab_size: Token ids the title branch embeds (pieces + padding).
        max_title_tokens: Padded title length (pieces, and word hashes).
        embedding_dim: Piece embedding size.
        hidden_units: Width of the fused dense layer.
        dropout: Dropout before the heads.
        word_buckets: Hash buckets of the word/bigram input ``title_words``; 0 = no such input.
        char_buckets: Hash buckets of the character n-gram input ``title_chars``; 0 = no such input.
        title_dropout: In a fused model, the share of training examples whose whole title
            branch is zeroed, so the image branch must learn to classify alone.
        image_heads: In a joint fused model, add one auxiliary softmax head per level on the image
            features alone (outputs named by :func:`~ecom_kfp.contracts.serving.model_image_head`).
        fusion: How a fused model combines its branches: ``joint`` or ``late`` (see
            :func:`build_classifier`).
        late_fusion_weight: ``late``: the weight of the image logits added to the title's.
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
    word_buckets: int = 0
    char_buckets: int = 0
    title_dropout: float = 0.0
    image_heads: bool = False
    fusion: str = "joint"
    late_fusion_weight: float = 0.4


class ProductClassifier(keras.Model):
    """Functional classifier whose gradients pass through :attr:`gradient_reducer`.

    Attributes:
        gradient_reducer: Averages gradients across ranks (the identity in one process).
        augmentation: Applied to each training batch's images before the forward pass; None = off.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gradient_reducer: GradientReducer = list
        self.augmentation: Augmentation | None = None
        self._loss_and_gradients = self._forward_backward

    def use_xla(self, enabled: bool) -> None:
        """Compile the forward and backward pass with XLA (``--jit-compile``); the allreduce and the
        optimizer update stay outside, so Horovod's ops never need an XLA kernel. Call before ``fit``."""
        self._loss_and_gradients = tf.function(self._forward_backward, jit_compile=True) if enabled \
            else self._forward_backward

    def _forward_backward(self, x, y, sample_weight):
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16
        return y_pred, loss, tape.gradient(scaled_loss, self.trainable_variables)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if self.augmentation is not None:
            x = {**x, IMAGE_INPUT: self.augmentation(x[IMAGE_INPUT], self.optimizer.iterations)}
        y_pred, loss, gradients = self._loss_and_gradients(x, y, sample_weight)
        self.optimizer.apply(self.gradient_reducer(gradients), self.trainable_variables)
        batch = tf.shape(next(iter(x.values())))[0]
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=batch)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing, which Keras' sparse loss lacks, and
    optionally logit adjustment for the rare classes.

    A share ``smoothing`` of each target is spread evenly over all classes, so the model is not
    pushed towards certainty on titles it has memorised. With ``log_prior`` (the log of each
    class's training share, times the adjustment strength) the loss is taken on
    ``log(p) + log_prior`` renormalised (Menon et al., "Long-tail learning via logit adjustment",
    2021): frequent classes get a head start in training only, so the served probabilities,
    which lack it, favour rare classes by exactly that margin.
    """

    def __init__(self, smoothing: float = 0.0, log_prior: Sequence[float] | None = None,
                 name: str = "smoothed_sparse_crossentropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing
        self.log_prior = None if log_prior is None else [float(v) for v in log_prior]

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        targets = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        if self.log_prior is None:
            return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.smoothing)
        epsilon = keras.config.epsilon()
        logits = keras.ops.log(keras.ops.clip(y_pred, epsilon, 1.0)) + keras.ops.cast(self.log_prior, y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, logits, from_logits=True, label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing, "log_prior": self.log_prior}


def logit_adjustment(class_counts: Sequence[int], strength: float) -> list[float] | None:
    """``strength * log(training share)`` per class for :class:`SmoothedSparseCrossentropy`, or
    ``None`` when ``strength`` is 0 or no class has a training count.

    A class without training records (``other`` when nothing is folded) gets the most frequent
    class's adjustment, not an infinite one: serving must not favour a class nothing was learned about.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if not strength or not counts.any():
        return None
    counts = np.where(counts > 0, counts, counts.max())
    return (strength * np.log(counts / counts.sum())).tolist()


def build_classifier(spec: ModelSpec, embeddings: np.ndarray | None = None) -> ProductClassifier:
    """Build the classifier; ``embeddings`` (``[vocab_size, embedding_dim]``) seeds the title branch.

    Both inputs always exist, so every model fits the same input pipeline and serving signature;
    an image-only or title-only model simply does not read the other.

    A fused model combines its branches in one of two ways (``spec.fusion``):

    - ``joint``: one shared dense layer and one set of heads on the concatenated features.
    - ``late``: each branch has its own dense layer and heads (named by
      :func:`~ecom_kfp.contracts.serving.model_branch_head`), trained by their own losses as if
      they were two models; the served head of level k is ``softmax(title_logits_k + w *
      image_logits_k)``, i.e. ``p_title * p_image ** w`` renormalised. Joint heads learn from
      the title alone once titles fit the training set; late heads cannot let the title drown
      the image, and the image's say is one number, ``w``, chosen by cross-validation.
    """
    image = keras.Input((spec.image_size, spec.image_size, 3), name=IMAGE_INPUT)
    tokens = keras.Input((spec.max_title_tokens,), dtype="int32", name=TITLE_INPUT)
    inputs = {IMAGE_INPUT: image, TITLE_INPUT: tokens}
    if spec.word_buckets:
        inputs[TITLE_WORDS_INPUT] = keras.Input((spec.max_title_tokens,), dtype="int32", name=TITLE_WORDS_INPUT)
    if spec.char_buckets:
        inputs[TITLE_CHARS_INPUT] = keras.Input((MAX_CHAR_GRAMS,), dtype="int32", name=TITLE_CHARS_INPUT)
    branches = {}
    auxiliary = {}
    if spec.inputs in ("fused", "image"):
        backbone = build_backbone(spec.backbone, spec.image_size)
        backbone.name = BACKBONE_LAYER
        branches["image"] = keras.layers.Identity(name=BACKBONE_FEATURES_LAYER)(backbone(image))
        if spec.inputs == "fused" and spec.image_heads:
            # Titles fit the training set within a few epochs, after which the fused heads pass
            # the image branch almost no gradient; heads of its own keep it learning what titles
            # miss, while the fused heads still see every title (unlike --title-dropout).
            auxiliary = {image_head_name(level): keras.layers.Dense(
                classes, activation="softmax", dtype="float32", name=image_head_name(level))(branches["image"])
                for level, classes in enumerate(spec.num_classes, start=1)}
    if spec.inputs in ("fused", "title"):
        title = _title_branch(inputs, spec)
        if spec.inputs == "fused" and spec.title_dropout:
            # Modality dropout: titles fit the training set within a few epochs, after which the
            # image branch gets almost no gradient; hiding the title from some examples keeps
            # the images learning what titles miss ("Shoe": casual or sports?).
            title = keras.layers.Dropout(spec.title_dropout, noise_shape=(None, 1), name="title_modality_dropout")(title)
        branches["title"] = title
    if spec.inputs == "fused" and spec.fusion == "late":
        outputs = {}
        logits = {}
        for branch, features in branches.items():
            probabilities, logits[branch] = _level_heads(_shared(features, spec, f"{branch}_"), spec.num_classes,
                                                         lambda level, b=branch: branch_head_name(b, level))
            outputs.update(probabilities)
        for level in range(1, len(spec.num_classes) + 1):
            image_logits = keras.layers.Rescaling(spec.late_fusion_weight, dtype="float32",
                                                  name=f"{output_name(level)}_image_weight")(logits["image"][level])
            fused = keras.layers.Add(dtype="float32", name=f"{output_name(level)}_logits")(
                [logits["title"][level], image_logits])
            outputs[output_name(level)] = keras.layers.Activation("softmax", dtype="float32",
                                                                  name=output_name(level))(fused)
    else:
        features = next(iter(branches.values())) if len(branches) == 1 else \
            keras.layers.Concatenate(name="fuse")(list(branches.values()))
        outputs, _ = _level_heads(_shared(features, spec), spec.num_classes, output_name, with_logits=False)
    model = ProductClassifier(inputs=inputs, outputs={**outputs, **auxiliary}, name="product_classifier")
    if embeddings is not None and spec.inputs != "image":
        model.get_layer(EMBEDDING_LAYER).set_weights([embeddings])
    return model


def _shared(features: keras.KerasTensor, spec: ModelSpec, prefix: str = "") -> keras.KerasTensor:
    """The dense layer (and its dropout) between the features and the heads."""
    features = keras.layers.Dense(spec.hidden_units, activation="relu", name=f"{prefix}shared")(features)
    return keras.layers.Dropout(spec.dropout, name=f"{prefix}shared_dropout")(features)


def _level_heads(features: keras.KerasTensor, num_classes: Sequence[int], name: Callable[[int], str],
                 with_logits: bool = True) -> tuple[dict[str, keras.KerasTensor], dict[int, keras.KerasTensor]]:
    """One softmax head per level, named ``name(level)``; a level also sees its parent's
    probabilities ("Men > Topwear" constrains the article type).

    Returns:
        ``({name(level): probabilities}, {level: logits})``; with ``with_logits`` False each head is
        one softmax Dense layer (the layout of joint models) and the logits are not returned.
    """
    probabilities, logits, parent = {}, {}, None
    for level, classes in enumerate(num_classes, start=1):
        head_input = features if parent is None else \
            keras.layers.Concatenate(name=f"{name(level)}_input")([features, parent])
        if with_logits:
            logits[level] = keras.layers.Dense(classes, dtype="float32", name=_logits_layer(name(level)))(head_input)
            parent = keras.layers.Activation("softmax", dtype="float32", name=name(level))(logits[level])
        else:
            parent = keras.layers.Dense(classes, activation="softmax", dtype="float32", name=name(level))(head_input)
        probabilities[name(level)] = parent
    return probabilities, logits


def _title_branch(inputs: dict[str, keras.KerasTensor], spec: ModelSpec) -> keras.KerasTensor:
    """Masked mean of piece embeddings (bag of pieces) plus max-pooled bigram/trigram filters,
    plus the masked means of the word/bigram and the character n-gram hash embeddings (fastText-style
    bags of n-grams) when the model has those inputs."""
    tokens = inputs[TITLE_INPUT]
    embedded = keras.layers.Embedding(spec.vocab_size, spec.embedding_dim, name=EMBEDDING_LAYER)(tokens)
    # An explicit mask (not mask_zero) so the mean skips padding while the convolution, which
    # cannot take a mask, does not warn about dropping one.
    mean = keras.layers.GlobalAveragePooling1D(name="title_mean")(embedded, mask=_mean_mask(tokens))
    grams = keras.layers.Conv1D(2 * spec.embedding_dim, 3, padding="same", activation="relu", name="title_ngrams")(embedded)
    peak = keras.layers.GlobalMaxPooling1D(name="title_max")(grams)
    parts = [mean, peak]
    for name, buckets, layer, pooled in ((TITLE_WORDS_INPUT, spec.word_buckets, WORD_EMBEDDING_LAYER, "title_word_mean"),
                                         (TITLE_CHARS_INPUT, spec.char_buckets, CHAR_EMBEDDING_LAYER, "title_char_mean")):
        if name in inputs:
            vectors = keras.layers.Embedding(buckets + 1, spec.embedding_dim, name=layer)(inputs[name])
            parts.append(keras.layers.GlobalAveragePooling1D(name=pooled)(vectors, mask=_mean_mask(inputs[name])))
    return keras.layers.Concatenate(name="title_features")(parts)


def _mean_mask(ids: keras.KerasTensor) -> keras.KerasTensor:
    """Non-padding positions, plus always the first: a title with no tokens (empty, or only
    punctuation for the word hashes) then averages the padding row instead of dividing 0 by 0."""
    first = np.zeros((1, ids.shape[1]), bool)
    first[0, 0] = True
    return keras.ops.logical_or(keras.ops.not_equal(ids, PAD_ID), first)


def _logits_layer(head: str) -> str:
    return f"{head}_dense"


def branch_classifier(model: keras.Model, branch: str, num_levels: int) -> keras.Model:
    """One branch of a late-fusion model (``--fusion late``) on its own: that branch's inputs in,
    its per-level probabilities out (keyed by :func:`~ecom_kfp.contracts.serving.model_output`),
    from the same layers, so what the served heads answer can be set beside what the title (or
    the image) alone answers. Works on ``model.keras``, which keeps the branches' logits.

    Raises:
        ValueError: ``model`` has no such branch (not a late-fusion model).
    """
    own_inputs = {k: v for k, v in model.input.items() if (k == IMAGE_INPUT) == (branch == "image")}
    outputs = {output_name(level): keras.layers.Softmax(dtype="float32")(
        model.get_layer(_logits_layer(branch_head_name(branch, level))).output) for level in range(1, num_levels + 1)}
    return keras.Model(own_inputs, outputs, name=f"{model.name}_{branch}")


def plain_functional(model: keras.Model, num_levels: int) -> keras.Model:
    """The served part of ``model`` as a plain ``keras.Model``: the ``num_levels`` level heads
    (auxiliary image heads dropped), loadable anywhere without this package's classes."""
    served = {output_name(level): model.get_layer(output_name(level)).output for level in range(1, num_levels + 1)}
    return keras.Model(model.input, served, name=model.name)


def feature_classifier(model: keras.Model, cut: str = "") -> ProductClassifier:
    """``model`` from its backbone's output on: image features ``[F]`` (under :data:`IMAGE_FEATURES_INPUT`)
    and the title inputs in, the same outputs out, for ``--frozen-backbone``.

    It is a view of ``model``'s own graph, not a copy: every layer after the backbone (title
    branch, fusion, shared dense, heads, auxiliary image heads) is the same object in both, so
    training it trains ``model``, which keeps the backbone and is what gets exported. Its outputs
    equal ``model``'s on the same products when the features are the backbone's in inference mode.

    With ``cut`` (``--frozen-backbone-until``) it starts inside the backbone instead: its image
    input is the output of the backbone layer ``cut`` (a feature map), and the backbone's layers
    after ``cut``, shared the same way, run before the rest and are made trainable.

    Raises:
        ValueError: ``model`` has no image backbone (a title-only model); ``cut`` is not a layer of
            the backbone's own graph, or layers after it also read layers before it (a layer
            inside a residual block).
    """
    try:
        features = model.get_layer(BACKBONE_FEATURES_LAYER).output
    except ValueError as err:
        raise ValueError(f"{model.name} has no image backbone ({BACKBONE_FEATURES_LAYER!r} layer)") from err
    # Keras builds a model from an intermediate tensor by giving it an Input of its own; naming the
    # tensor names that Input's key and keeps Keras from warning about it.
    features.name = IMAGE_FEATURES_INPUT
    inputs = {IMAGE_FEATURES_INPUT: features, **{k: v for k, v in model.input.items() if k != IMAGE_INPUT}}
    on_features = ProductClassifier(inputs=inputs, outputs=model.output, name=f"{model.name}_on_features")
    if not cut:
        return on_features
    tail = backbone_tail(model.get_layer(BACKBONE_LAYER), cut)
    for layer in tail.layers:  # a functional model's own trainable flag does not reach its layers
        layer.trainable = True
    maps = keras.Input(tail.input.shape[1:], name=IMAGE_FEATURES_INPUT)
    inputs = {**inputs, IMAGE_FEATURES_INPUT: maps}
    outputs = on_features({**inputs, IMAGE_FEATURES_INPUT: tail(maps)})
    # A nested model's outputs take its name; losses and metrics are keyed by the heads' names.
    outputs = {head: keras.layers.Identity(name=head)(output) for head, output in outputs.items()}
    return ProductClassifier(inputs=inputs, outputs=outputs, name=f"{model.name}_after_{cut}")


def backbone_front(backbone: keras.Model, cut: str) -> keras.Model:
    """``backbone`` from its images to the output of its layer ``cut`` (its own layers, shared).

    Raises:
        ValueError: ``backbone`` has no layer ``cut`` in its own graph.
    """
    return keras.Model(backbone.input, backbone.get_layer(cut).output, name=f"{backbone.name}_until_{cut}")


def backbone_tail(backbone: keras.Model, cut: str) -> keras.Model:
    """``backbone`` from the output of its layer ``cut`` to its features (its own layers, shared).

    Raises:
        ValueError: as :func:`feature_classifier`; the message lists the backbone's block outputs.
    """
    try:
        return _after(backbone, cut)
    except ValueError as err:
        raise ValueError(f"{cut!r} is not a layer of the backbone that every later layer reads only through "
                         f"(a block's output); its blocks' outputs are {', '.join(block_outputs(backbone))}") from err


def block_outputs(backbone: keras.Model) -> list[str]:
    """The layers of ``backbone`` that end a block (the name before its last ``_`` changes after
    them) and can be cut at: every layer after one reads the layers before it only through it."""
    names = [layer.name for layer in backbone.layers]
    ends = [name for name, after in zip(names[1:-1], names[2:], strict=True) if name.rsplit("_", 1)[0] != after.rsplit("_", 1)[0]]
    cuts = []
    for name in ends:
        try:
            _after(backbone, name)
        except ValueError:
            continue
        cuts.append(name)
    return cuts


def _after(backbone: keras.Model, cut: str) -> keras.Model:
    """``backbone``'s layers after ``cut`` as a model; Keras raises ValueError when they need more."""
    return keras.Model(backbone.get_layer(cut).output, backbone.output, name=f"{backbone.name}_after_{cut}")


def set_backbone_trainable(model: keras.Model, trainable: bool) -> bool:
    """Freeze or unfreeze the image backbone; False when the model has none."""
    try:
        model.get_layer(BACKBONE_LAYER).trainable = trainable
    except ValueError:
        return False
    return True
