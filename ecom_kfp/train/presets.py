"""Named training presets: the hardware-dependent settings of a run, defined here and nowhere else.

A preset fills the settings a run leaves unset (``--backbone ''``, ``--image-size 0``,
``--epochs 0``, ``--batch-size 0``, ``--learning-rate 0``, which is what the CLI, the component and
the pipeline default to); any value given explicitly wins. The other settings' defaults on
:class:`~ecom_kfp.train.config.TrainConfig` (dropout 0.3, level weights 1,1,3, 32,768 title word
buckets, 65,536 title character n-gram buckets, weight decay 0.05, weight EMA 0.99, label smoothing
0.1) are the ones measured best on myntra-dev and apply under every preset.

- ``cpu-small``: the settings ``benchmarks/bench_train_quality.py`` measured best on 2 CPU cores
  (small-cnn at 64 px, batch 32, learning rate 3e-3, 18 epochs); laptops, CI and the demo.
- ``gpu``: a real backbone at 224 px for a GPU pool, one Horovod process per GPU. The batch size
  is per GPU and the learning rate per GPU too: the run scales it linearly by the number of
  processes after warm-up (Goyal et al.), so the global batch and the peak rate grow together.
  Not measured on a GPU (none was available): a starting point to tune with
  ``benchmarks/bench_train_gpu.py`` and the quality benchmark on the first GPU run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """The settings a preset fills.

    Attributes:
        backbone: Image backbone name.
        image_size: Model input side in pixels.
        epochs: Passes over the training split.
        batch_size: Examples per step on each process (each GPU).
        learning_rate: Base learning rate of one process, scaled by the number of processes.
    """

    backbone: str
    image_size: int
    epochs: int
    batch_size: int
    learning_rate: float


PRESETS: dict[str, Preset] = {
    "cpu-small": Preset(backbone="small-cnn", image_size=64, epochs=18, batch_size=32, learning_rate=3e-3),
    "gpu": Preset(backbone="efficientnetv2-b0", image_size=224, epochs=30, batch_size=128, learning_rate=2e-3),
}
PRESET_NAMES = tuple(PRESETS)
DEFAULT_PRESET = "cpu-small"
#: The value of each preset setting that means "not given: take the preset's".
UNSET = Preset(backbone="", image_size=0, epochs=0, batch_size=0, learning_rate=0.0)
