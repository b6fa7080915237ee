"""Image backbones by name, built from explicit architecture arguments: nothing is downloaded.

Every backbone takes float images in 0..255 of shape ``[S, S, 3]`` and returns pooled features
``[F]``; the input scaling each architecture expects is part of the backbone, so weights loaded
with ``--weights`` must have been trained with the same scaling (``keras.applications``
ImageNet weights of EfficientNetV2 and MobileNetV3 are; ResNet50's expect BGR caffe scaling,
so fine-tune those rather than using them as frozen features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry.

    Attributes:
        build: ``build(image_size) -> keras.Model`` from 0..255 images to pooled features.
        min_image_size: Smallest input the architecture accepts.
    """

    build: Callable[[int], keras.Model]
    min_image_size: int


def _scaled(name: str, image_size: int, application: Callable[..., keras.Model], scale: float, offset: float) -> keras.Model:
    """An application without its own preprocessing, behind a ``Rescaling`` to its input range.

    Built on the rescaled tensor rather than called on it, so that the application's layers are
    this model's own and ``--frozen-backbone-until`` can cut between them (a nested application
    is one layer, which cannot be cut).
    """
    inputs = keras.Input((image_size, image_size, 3), name=f"{name}_input")
    rescaled = keras.layers.Rescaling(scale, offset, name="rescale")(inputs)
    core = application(include_top=False, weights=None, input_tensor=rescaled, pooling="avg")
    return keras.Model(inputs, core.output, name=name)


def _small_cnn(image_size: int) -> keras.Model:
    """Four conv blocks (~0.1 M parameters): the demo's and CI's backbone on 2 CPU cores.

    Its layers are named (``block1_conv`` ... ``block4_relu``, ``avg_pool``) so that
    ``--frozen-backbone-until`` can name one the same way in every process; weights files key
    layers by their class and order, not their name, so weights saved before the names still load.
    """
    inputs = keras.Input((image_size, image_size, 3), name="small_cnn_input")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    for block, filters in enumerate((32, 64, 96, 128), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = keras.layers.Activation("relu", name=f"block{block}_relu")(x)
        x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x) if filters < 128 else x
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, x, name="small_cnn")


def _resnet_small(image_size: int, widths: tuple[int, ...] = (32, 64, 128, 256), blocks_per_stage: int = 2) -> keras.Model:
    """A ResNet-18-shaped network at half width (~2.8 M parameters): basic residual blocks, a
    stride-2 projection shortcut where the width changes.

    The stem is one stride-2 3x3 convolution instead of ResNet's 7x7 convolution and max pool (4x
    down): product thumbnails are small (Myntra's are 60x80), and the 4x stem would discard the
    detail that tells a sports shoe from a casual one.
    """
    inputs = keras.Input((image_size, image_size, 3), name="resnet_small_input")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = _conv_bn(x, "stem", widths[0], 3, 2, relu=True)
    for stage, filters in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            name = f"stage{stage}_block{block}"
            stride = 2 if stage > 1 and block == 1 else 1
            shortcut = x if stride == 1 and x.shape[-1] == filters else \
                _conv_bn(x, f"{name}_shortcut", filters, 1, stride, relu=False)
            y = _conv_bn(x, f"{name}_1", filters, 3, stride, relu=True)
            y = _conv_bn(y, f"{name}_2", filters, 3, 1, relu=False)
            x = keras.layers.Activation("relu", name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([shortcut, y]))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, x, name="resnet_small")


def _conv_bn(x: keras.KerasTensor, name: str, filters: int, kernel: int, stride: int, relu: bool) -> keras.KerasTensor:
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


#: EfficientNet-Lite0's stages: (expansion, kernel, stride, output channels, blocks). Lite drops
#: B0's squeeze-and-excitation and swish (ReLU6 instead), which quantise and run well on CPUs.
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
LITE0_STEM, LITE0_HEAD, LITE0_BN_EPSILON = 32, 1280, 1e-3


def _efficientnet_lite0(image_size: int) -> keras.Model:
    """EfficientNet-Lite0 (~3.4 M parameters), layers named after the reference checkpoint's
    modules (``stem``, ``block{i}_expand``, ``block{i}_depthwise``, ``block{i}_project``, ``head``)
    so :mod:`ecom_kfp.train.pretrained` can load its ImageNet weights. Input scaling: (x - 127) / 128."""
    inputs = keras.Input((image_size, image_size, 3), name="efficientnet_lite0_input")
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0)(inputs)
    x = _conv_bn_relu6(x, "stem", keras.layers.Conv2D, LITE0_STEM, 3, strides=2, padding="same")
    block = 0
    for expansion, kernel, stride, filters, repeats in LITE0_STAGES:
        for repeat in range(repeats):
            shortcut, step = x, stride if repeat == 0 else 1
            if expansion != 1:
                x = _conv_bn_relu6(x, f"block{block}_expand", keras.layers.Conv2D, x.shape[-1] * expansion, 1)
            x = _conv_bn_relu6(x, f"block{block}_depthwise", keras.layers.DepthwiseConv2D, kernel, strides=step,
                               padding="same")
            x = _conv_bn_relu6(x, f"block{block}_project", keras.layers.Conv2D, filters, 1, relu6=False)
            if step == 1 and shortcut.shape[-1] == filters:
                x = keras.layers.Add(name=f"block{block}_add")([shortcut, x])
            block += 1
    x = _conv_bn_relu6(x, "head", keras.layers.Conv2D, LITE0_HEAD, 1)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="avg_pool")(x), name="efficientnet_lite0")


def _conv_bn_relu6(x: keras.KerasTensor, name: str, conv: type[keras.layers.Layer], *args,
                   relu6: bool = True, **kwargs) -> keras.KerasTensor:
    x = conv(*args, use_bias=False, name=f"{name}_conv", **kwargs)(x)
    x = keras.layers.BatchNormalization(epsilon=LITE0_BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu6 else x


def _mobilenetv3_small(image_size: int) -> keras.Model:
    # include_preprocessing rescales 0..255 itself.
    return keras.applications.MobileNetV3Small(input_shape=(image_size, image_size, 3), include_top=False,
                                               weights=None, pooling="avg", include_preprocessing=True,
                                               minimalistic=True)


def _efficientnetv2_b0(image_size: int) -> keras.Model:
    return keras.applications.EfficientNetV2B0(input_shape=(image_size, image_size, 3), include_top=False,
                                               weights=None, pooling="avg", include_preprocessing=True)


REGISTRY: dict[str, BackboneSpec] = {
    "small-cnn": BackboneSpec(_small_cnn, 16),
    "resnet-small": BackboneSpec(_resnet_small, 16),
    "mobilenetv3-small": BackboneSpec(_mobilenetv3_small, 32),
    "resnet50": BackboneSpec(lambda s: _scaled("resnet50", s, keras.applications.ResNet50, 1 / 127.5, -1.0), 32),
    "efficientnetv2-b0": BackboneSpec(_efficientnetv2_b0, 32),
    "efficientnet-lite0": BackboneSpec(_efficientnet_lite0, 32),
    "xception": BackboneSpec(lambda s: _scaled("xception", s, keras.applications.Xception, 1 / 127.5, -1.0), 71),
}


def build_backbone(name: str, image_size: int) -> keras.Model:
    """Build backbone ``name`` for ``image_size`` square inputs.

    Raises:
        ValueError: unknown name (naming ``--backbone``) or an image size below its minimum
            (naming ``--image-size``).
    """
    if name not in REGISTRY:
        raise ValueError(f"--backbone {name!r} is unknown; choose from {', '.join(REGISTRY)}")
    spec = REGISTRY[name]
    if image_size < spec.min_image_size:
        raise ValueError(f"--image-size {image_size} is below {name}'s minimum of {spec.min_image_size}")
    return spec.build(image_size)
