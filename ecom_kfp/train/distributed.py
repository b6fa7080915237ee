"""Horovod or a single process behind one small interface.

A process joins Horovod only when a launcher started it (``horovodrun`` sets ``HOROVOD_RANK``;
``mpirun`` in an MPIJob sets ``OMPI_COMM_WORLD_RANK``/``PMI_RANK``). Otherwise it is rank 0 of
1 and Horovod need not be installed: every collective is then the identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ecom_kfp.resources import available_cpus

LAUNCHER_RANK_VARIABLES = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
HOROVOD_MISSING = ("Horovod is not installed in this environment, so --np > 1 cannot run; build it with "
                   "scripts/build_horovod.sh (or use --np 1)")


def launched_by_horovod() -> bool:
    """True inside a process started by horovodrun or mpirun."""
    return any(name in os.environ for name in LAUNCHER_RANK_VARIABLES)


def import_horovod() -> ModuleType:
    """``horovod.tensorflow``, or a RuntimeError telling the user how to get it."""
    try:
        import horovod.tensorflow as hvd
    except ImportError as err:
        raise RuntimeError(HOROVOD_MISSING) from err
    return hvd


@dataclass
class Workers:
    """This process's place among the training processes and the collectives between them.

    Attributes:
        rank: Global rank; rank 0 writes outputs and talks to MLflow.
        size: Number of processes.
        local_size: Processes on this machine (they share its cores).
        fp16_allreduce: Send gradients as float16 (halves allreduce traffic).
    """

    rank: int = 0
    size: int = 1
    local_size: int = 1
    fp16_allreduce: bool = False
    _hvd: ModuleType | None = None

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def reduce_gradients(self, gradients: list) -> list:
        """Average gradients over ranks with one grouped allreduce (fused into few messages).

        Embedding gradients (``tf.IndexedSlices``) are made dense first: Horovod 0.28's
        ``grouped_allreduce`` pairs each slice with the dense shape of the wrong tensor when a
        group holds more than one (the title piece and word embeddings) and fails.
        """
        if self._hvd is None:
            return list(gradients)
        import tensorflow as tf

        hvd = self._hvd
        compression = hvd.Compression.fp16 if self.fp16_allreduce else hvd.Compression.none
        dense = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gradients]
        return list(hvd.grouped_allreduce(dense, op=hvd.Average, compression=compression))

    def broadcast_variables(self, variables: list) -> None:
        """Give every rank rank 0's values (initial weights, a resumed checkpoint)."""
        if self._hvd is None:
            return
        for variable in variables:
            variable.assign(self._hvd.broadcast(variable.value, root_rank=0))

    def average_variables(self, variables: list) -> None:
        """Replace float variables by their mean over ranks (BatchNorm statistics drift per rank)."""
        if self._hvd is None:
            return
        for variable in variables:
            if "float" in str(variable.dtype):
                variable.assign(self._hvd.allreduce(variable.value, op=self._hvd.Average))

    def average_scalars(self, values: dict[str, float]) -> dict[str, float]:
        """Mean of each named scalar over ranks (every rank passes the same names)."""
        if self._hvd is None or not values:
            return dict(values)
        import tensorflow as tf

        names = sorted(values)
        mean = self._hvd.allreduce(tf.constant([float(values[n]) for n in names], tf.float64), op=self._hvd.Average)
        return dict(zip(names, mean.numpy().tolist(), strict=True))

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, rank order, on every rank."""
        if self._hvd is None:
            return [obj]
        return list(self._hvd.allgather_object(obj))


def init_workers(fp16_allreduce: bool = False) -> Workers:
    """Join Horovod when launched by it, else a single process; call before TensorFlow runs ops.

    Ranks sharing a machine split its cores so that N CPU processes do not oversubscribe it.
    """
    if not launched_by_horovod():
        return Workers(fp16_allreduce=fp16_allreduce)
    hvd = import_horovod()
    hvd.init()
    import tensorflow as tf

    if hvd.local_size() > 1 and not tf.config.list_physical_devices("GPU"):
        threads = max(1, available_cpus() // hvd.local_size())
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    for gpu_index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        tf.config.experimental.set_memory_growth(gpu, True)
        if gpu_index == hvd.local_rank():
            tf.config.set_visible_devices(gpu, "GPU")
    return Workers(rank=hvd.rank(), size=hvd.size(), local_size=hvd.local_size(),
                   fp16_allreduce=fp16_allreduce, _hvd=hvd)
