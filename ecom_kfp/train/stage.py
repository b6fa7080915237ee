"""``run(TrainConfig) -> TrainReport``: train, export and track one model where ``--launcher`` says.

- ``local``: in this process (:func:`ecom_kfp.train.trainer.train_worker`), or with ``--np`` > 1
  under horovodrun on this machine;
- ``horovodrun``: always under horovodrun on this machine (:mod:`ecom_kfp.train.launch`);
- ``mpijob``: an MPI Operator MPIJob across pods (:mod:`ecom_kfp.train.mpijob`).

Whichever ran the ranks, rank 0 wrote the :class:`~ecom_kfp.contracts.layouts.ModelLayout` and its
``report.json``, which is what this returns.
"""

from __future__ import annotations

from ecom_kfp.train.config import TrainConfig
from ecom_kfp.train.distributed import init_workers, launched_by_horovod
from ecom_kfp.train.report import TrainReport
from ecom_kfp.train.tracking import resolve_tracking_uri


def run(config: TrainConfig) -> TrainReport:
    """Train per ``config``; returns rank 0's report (also written to ``out/report.json``)."""
    config.validate()
    # Before any pod or process starts: rank 0 would only find out after loading the data.
    resolve_tracking_uri(config.mlflow_tracking_uri, config.out)
    if config.launcher == "mpijob":
        from ecom_kfp.train.mpijob import run_mpijob

        return run_mpijob(config)
    under_horovod = config.launcher == "horovodrun" or config.num_processes > 1
    if under_horovod and not launched_by_horovod():
        from ecom_kfp.train.launch import run_horovod

        return run_horovod(config)
    from ecom_kfp.train.trainer import train_worker

    report = train_worker(config, init_workers(config.fp16_allreduce))
    assert report is not None  # a single process is rank 0
    return report
