"""Entry point of each process horovodrun (or mpirun in an MPIJob) starts.

``python -m ecom_kfp.train.worker CONFIG_URI``: CONFIG_URI holds :meth:`TrainConfig.to_json`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ecom_kfp import uri
from ecom_kfp.train.config import TrainConfig
from ecom_kfp.train.distributed import init_workers


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m ecom_kfp.train.worker CONFIG_URI", file=sys.stderr)
        return 2
    config = TrainConfig.from_json(uri.read_text(args[0]))
    workers = init_workers(config.fp16_allreduce)
    logging.basicConfig(level=logging.INFO if workers.is_chief else logging.WARNING,
                        format=f"%(asctime)s rank{workers.rank} %(levelname)s %(name)s: %(message)s")
    from ecom_kfp.train.trainer import train_worker

    train_worker(config, workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
