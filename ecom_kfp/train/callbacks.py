"""Keras callbacks of a training run: cross-rank averaging, timing, checkpoints, MLflow.

Order matters: :class:`SyncAcrossRanks` must come first so that later callbacks (and Keras'
``History``, which runs last) see metrics averaged over all ranks.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras

from ecom_kfp import uri
from ecom_kfp.scratch import scratch_dir
from ecom_kfp.train.config import training_splits
from ecom_kfp.train.distributed import Workers

CHECKPOINT_WEIGHTS = "checkpoints/last.weights.h5"
CHECKPOINT_STATE = "checkpoints/state.json"


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``base`` to ``peak`` (base x ranks, Goyal et al.), then cosine to zero.

    ``step_offset`` continues the curve when a later phase (unfrozen fine-tuning, a resumed run)
    starts with a fresh optimizer whose step counter is back at zero.
    """

    def __init__(self, base: float, peak: float, warmup_steps: int, total_steps: int, step_offset: int = 0) -> None:
        self.base, self.peak = base, peak
        self.warmup_steps, self.total_steps, self.step_offset = warmup_steps, max(1, total_steps), step_offset

    def __call__(self, step):
        step = keras.ops.cast(step, "float32") + self.step_offset
        warm = self.base + (self.peak - self.base) * step / max(1, self.warmup_steps)
        progress = keras.ops.clip((step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps), 0.0, 1.0)
        cosine = 0.5 * self.peak * (1.0 + keras.ops.cos(math.pi * progress))
        return keras.ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self) -> dict:
        return {"base": self.base, "peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "step_offset": self.step_offset}


class SyncAcrossRanks(keras.callbacks.Callback):
    """At each epoch end: average BatchNorm statistics and every logged metric over ranks.

    Each rank only sees its own shard, so its loss and accuracy are a sample; their mean is the
    epoch's figure (Wehkamp's metric averaging). Gradients are already averaged per step.
    """

    def __init__(self, workers: Workers) -> None:
        super().__init__()
        self.workers = workers
        #: The last epoch's metrics of this rank before averaging (tests check the mean).
        self.local_logs: dict[str, float] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.workers.average_variables(self.model.non_trainable_weights)
        if logs is not None:
            self.local_logs = {k: float(v) for k, v in logs.items()}
            logs.update(self.workers.average_scalars(self.local_logs))


@dataclass
class EpochTimes:
    """Wall seconds per epoch, recorded by :class:`EpochTimer`."""

    seconds: list[float] = field(default_factory=list)


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time (the first includes graph tracing)."""

    def __init__(self, times: EpochTimes) -> None:
        super().__init__()
        self.times = times
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.seconds.append(time.perf_counter() - self._start)


class EpochProgress(keras.callbacks.Callback):
    """One short line per finished epoch for the person watching (``say(line)``); every metric to
    the log.

    Keras' own epoch line lists every head's loss and accuracy (19 figures for a late-fusion
    model). Added after :class:`SyncAcrossRanks` (figures averaged over ranks) and
    :class:`EpochTimer` (the epoch's seconds), on the chief only.
    """

    def __init__(self, epochs: int, deepest_level: int, times: EpochTimes, say: Callable[[str], None]) -> None:
        super().__init__()
        self.epochs, self.times, self.say = epochs, times, say
        self.accuracy = f"level_{deepest_level}_accuracy"
        self.level = deepest_level

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        logging.getLogger(__name__).info("epoch %d/%d: %s", epoch + 1, self.epochs,
                                         ", ".join(f"{k} {float(v):.4f}" for k, v in sorted(logs.items())))
        parts = [f"loss {float(logs['loss']):.3f}"] if "loss" in logs else []
        for prefix, name in (("", "level"), ("val_", "val level")):
            if prefix + self.accuracy in logs:
                parts.append(f"{name} {self.level} accuracy {float(logs[prefix + self.accuracy]):.3f}")
        seconds = f" ({self.times.seconds[-1]:.0f}s)" if self.times.seconds else ""
        self.say(f"  epoch {epoch + 1}/{self.epochs}: {', '.join(parts)}{seconds}")


class Checkpoint(keras.callbacks.Callback):
    """Rank 0 saves the weights, the finished epoch and the splits trained on under ``out`` after every epoch.

    ``saved`` is the model whose weights are saved when it is not the one being fitted (with
    ``--frozen-backbone``, the full model around the fitted part after its backbone).
    """

    def __init__(self, out: str, fit_splits: Sequence[str], saved: keras.Model | None = None) -> None:
        super().__init__()
        self.out = out
        self.fit_splits = list(fit_splits)
        self.saved = saved

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        with scratch_dir("ckpt") as tmp:
            local = str(Path(tmp) / "last.weights.h5")
            (self.saved if self.saved is not None else self.model).save_weights(local)
            uri.copy(local, uri.join(self.out, CHECKPOINT_WEIGHTS))
        uri.write_json(uri.join(self.out, CHECKPOINT_STATE), {"epoch": epoch + 1, "fit_splits": self.fit_splits})


@dataclass(frozen=True)
class SavedCheckpoint:
    """What :class:`Checkpoint` left under a run's ``out``."""

    epoch: int
    weights: str
    fit_splits: list[str]


def last_checkpoint(out: str) -> SavedCheckpoint | None:
    """The checkpoint under ``out``, if any."""
    state_uri = uri.join(out, CHECKPOINT_STATE)
    if not uri.exists(state_uri):
        return None
    state = uri.read_json(state_uri)
    # Checkpoints from before --fit-on-val existed trained on what training without it reads.
    return SavedCheckpoint(int(state["epoch"]), uri.join(out, CHECKPOINT_WEIGHTS),
                           state.get("fit_splits", list(training_splits(fit_on_val=False))))


class EpochMetricsLogger(keras.callbacks.Callback):
    """Hands each epoch's (already averaged) metrics to ``log(metrics, epoch)``."""

    def __init__(self, log: Callable[[dict[str, float], int], None]) -> None:
        super().__init__()
        self.log = log

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.log({k: float(v) for k, v in (logs or {}).items()}, epoch)
