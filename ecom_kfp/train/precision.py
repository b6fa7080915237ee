"""Compute precision by hardware: ``--precision auto|float32|mixed_float16|mixed_bfloat16``.

``auto`` picks ``mixed_bfloat16`` when every visible GPU has compute capability >= 8.0 (A100,
H100, H200: bfloat16 has float32's range, so no loss scaling), ``mixed_float16`` on older GPUs
(V100, T4), and ``float32`` on CPUs. Under ``mixed_float16``, Keras' ``compile`` wraps the optimizer
in ``keras.optimizers.LossScaleOptimizer``; the classifier's ``train_step`` scales the loss before
``tape.gradient``, averages the still-scaled gradients across ranks, and the optimizer unscales
them and skips the step on every rank alike when the average is not finite. Heads always
compute in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

#: The first compute capability with bfloat16 tensor cores (Ampere).
BFLOAT16_CAPABILITY = (8, 0)


def choose_policy(precision: str, gpu_capabilities: Sequence[tuple[int, int]]) -> str:
    """The Keras dtype policy for ``precision`` on GPUs of ``gpu_capabilities`` (empty: CPU only)."""
    if precision != "auto":
        return precision
    if not gpu_capabilities:
        return "float32"
    return "mixed_bfloat16" if min(gpu_capabilities) >= BFLOAT16_CAPABILITY else "mixed_float16"


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capability of each GPU TensorFlow sees (this rank sees its own only)."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            found.append(tuple(capability))
    return found


def resolve_policy(precision: str) -> str:
    """``precision`` resolved on this machine's hardware."""
    return choose_policy(precision, gpu_capabilities() if precision == "auto" else [])


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build models under the Keras global dtype policy ``name``, restoring the previous one after."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
