"""``report.json`` of the training stage (:class:`TrainReport`), written by rank 0 and read back by
every launcher that ran the ranks elsewhere (horovodrun, an MPIJob)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import ModelLayout


@dataclass
class TrainReport:
    """``report.json`` of the training stage.

    Attributes:
        preset: The preset that filled the settings left unset (also an MLflow param).
        precision: The Keras dtype policy the run used (``--precision auto`` resolved).
        jit_compile: Whether the forward and backward pass ran under XLA.
        mlflow_run_id / mlflow_tracking_uri: Where params, metrics and artifacts were logged.
        num_processes: Horovod ranks that trained.
        epochs_trained / resumed_from_epoch: This run's epochs and the checkpoint it started from.
        steps_per_epoch / batch_size / global_batch_size / peak_learning_rate: The schedule.
        level_weights: Loss weight per level as applied to the dataset's levels.
        counts: Records per split; num_classes: classes per level.
        fit_splits: The splits the model was trained on (``val`` too with ``--fit-on-val``).
        embedding_rows_from_doc2vec: Title pieces whose embedding started from Doc2Vec.
        final_metrics: Last epoch's metrics, averaged over ranks.
        test_metrics: Rank 0's evaluation of the whole test split.
        examples_per_second: Training throughput of all ranks together (epochs after the first
            when there are several, so graph tracing is not counted).
        per_rank: Each rank's examples/s, weights checksum and un-averaged last-epoch metrics.
        timings: Wall seconds per phase.
        backbone_feature_seconds: With ``--frozen-backbone``, rank 0's one backbone pass over its
            training (and validation) products, part of the ``fit`` timing; 0 otherwise.
    """

    data: str
    out: str
    backbone: str
    inputs: str
    num_processes: int
    image_size: int
    preset: str = ""
    precision: str = ""
    jit_compile: bool = False
    mlflow_run_id: str = ""
    mlflow_tracking_uri: str = ""
    epochs_trained: int = 0
    resumed_from_epoch: int = 0
    steps_per_epoch: int = 0
    batch_size: int = 0
    global_batch_size: int = 0
    peak_learning_rate: float = 0.0
    level_weights: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    fit_splits: list[str] = field(default_factory=list)
    num_classes: list[int] = field(default_factory=list)
    embedding_rows_from_doc2vec: int = 0
    final_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    examples_per_second: float = 0.0
    per_rank: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    backbone_feature_seconds: float = 0.0
    stage: str = "train"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainReport:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def read(cls, out: str) -> TrainReport:
        """The report rank 0 wrote under the run's output ``out``."""
        return cls.from_dict(uri.read_json(ModelLayout(out).report))
