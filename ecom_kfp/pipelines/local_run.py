"""``ecom-kfp run-local``: the whole training pipeline on one machine, no cluster.

Generates the demo catalog under ``<out>/catalog``, serves its images on 127.0.0.1 (so ingest
really downloads them), and runs :func:`~ecom_kfp.pipelines.training.training_pipeline` under
``kfp.local.SubprocessRunner(use_venv=False)`` with its pipeline root at ``<out>/pipeline_root``,
an MLflow sqlite store at ``<out>/mlflow.db`` (unless ``--mlflow-uri``) and the serving copy at
``<out>/serving``. Then it reads every stage's ``report.json`` from the task outputs, checks that
the counts add up from ingest to push, prints a summary and writes it to ``<out>/report.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecom_kfp.report import write_report

#: stage -> (kfp.local task directory, output artifact holding the stage's layout root)
STAGE_OUTPUTS = {
    "ingest": ("ingest-op", "products"),
    "dedupe": ("hash-dedupe-op", "deduped"),
    "dataset": ("tfrecord-build-op", "dataset"),
    "train": ("train-op", "model"),
    "evaluate": ("evaluate-op", "evaluation"),
    "push": ("push-op", "pushed"),
}


@dataclass(frozen=True)
class LocalRunConfig:
    """Flags of ``ecom-kfp run-local``.

    Attributes:
        out: Output directory (``--out``).
        products: Demo catalog size (``--products``).
        epochs: Training epochs (``--epochs``).
        image_size: Model input side (``--image-size``).
        backbone: Image backbone (``--backbone``).
        mlflow_uri: MLflow URI; empty = sqlite store under ``out`` (``--mlflow-uri``).
        seed: Demo catalog seed (``--seed``).
        cache: Reuse kfp.local task outputs of earlier runs under ``out`` (``--cache``).
        min_class_count: Classes with fewer products fold into ``other``; small for the demo.
        batch_size: Global batch size.
    """

    out: str
    products: int = 600
    epochs: int = 2
    image_size: int = 64
    backbone: str = "small-cnn"
    mlflow_uri: str = ""
    seed: int = 0
    cache: bool = False
    min_class_count: int = 3
    batch_size: int = 32

    def validate(self) -> None:
        """Fail fast, naming the flag, on values the run cannot use."""
        checks = ((self.products > 0, "--products", self.products, "must be positive"),
                  (self.epochs > 0, "--epochs", self.epochs, "must be positive"),
                  (self.image_size >= 32, "--image-size", self.image_size, "must be at least 32"),
                  (bool(self.out), "--out", self.out, "must name a directory"))
        for ok, flag, value, rule in checks:
            if not ok:
                raise ValueError(f"{flag}={value!r}: {rule}")


@dataclass
class LocalRunSummary:
    """What a local run produced (``<out>/report.json``)."""

    out: str
    run_dir: str
    mlflow_uri: str
    serving_uri: str
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)


def find_run_dir(pipeline_root: Path, pipeline_name: str) -> Path:
    """The newest kfp.local run directory of ``pipeline_name`` under ``pipeline_root``."""
    runs = sorted(pipeline_root.glob(f"{pipeline_name}-*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(f"no run of {pipeline_name!r} under {pipeline_root}")
    return runs[-1]


def stage_outputs(run_dir: Path) -> dict[str, Path]:
    """Stage -> its output layout root in a kfp.local run (push is absent when not blessed).

    kfp.local writes a task's outputs to ``<run>/<task>/<output>``, nested under the
    sub-pipeline's task directory for tasks inside one (push runs inside ``push-blessed``).
    """
    found = {}
    for stage, (task, output) in STAGE_OUTPUTS.items():
        matches = sorted(p for p in run_dir.rglob(output) if p.parent.name == task)
        if len(matches) > 1:
            raise RuntimeError(f"{len(matches)} outputs of task {task!r} under {run_dir}: {matches}")
        if matches:
            found[stage] = matches[0]
    return found


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def read_reports(outputs: dict[str, Path]) -> dict[str, Any]:
    """Every stage's ``report.json``, plus evaluate's metrics and blessing and the dataset manifest."""
    from ecom_kfp.contracts.layouts import DatasetLayout, EvaluationLayout

    reports = {stage: _read_json(root / "report.json") for stage, root in outputs.items()}
    if "dataset" in outputs:
        reports["dataset_manifest"] = _read_json(Path(DatasetLayout(str(outputs["dataset"])).manifest))
    if "evaluate" in outputs:
        layout = EvaluationLayout(str(outputs["evaluate"]))
        reports["evaluation_metrics"] = _read_json(Path(layout.metrics))
        reports["blessing"] = _read_json(Path(layout.blessing))
    return reports


def run_local(config: LocalRunConfig) -> LocalRunSummary:
    """Generate the demo catalog, run ``training_pipeline`` under kfp.local, summarise it.

    Raises:
        ValueError: for an invalid config (the message names the flag).
        RuntimeError: when a pipeline task fails (kfp.local's message names the task).
    """
    from kfp import local

    from ecom_kfp.demo import DemoCatalogConfig, generate, serve_directory
    from ecom_kfp.pipelines.training import PIPELINE_NAME, training_pipeline

    config.validate()
    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    mlflow_uri = config.mlflow_uri or f"sqlite:///{out / 'mlflow.db'}"
    serving_uri = str(out / "serving")
    pipeline_root = out / "pipeline_root"
    timings: dict[str, float] = {}

    start = time.perf_counter()
    demo = generate(DemoCatalogConfig(out=str(out / "catalog"), products=config.products,
                                      seed=config.seed))
    timings["demo_catalog"] = time.perf_counter() - start
    with serve_directory(demo.images) as images_base:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root),
                   enable_caching=config.cache)
        pipeline_start = time.perf_counter()
        training_pipeline(
            catalog=demo.catalog, catalog_format="jsonl", images_base=images_base,
            business_value_uri=demo.business_value, image_size=config.image_size,
            min_class_count=config.min_class_count, backbone=config.backbone,
            epochs=config.epochs, batch_size=config.batch_size, num_gpus=1,
            mlflow_tracking_uri=mlflow_uri, serving_uri=serving_uri, ingest_concurrency=16)
        timings["pipeline"] = time.perf_counter() - pipeline_start
    run_dir = find_run_dir(pipeline_root, PIPELINE_NAME)
    outputs = stage_outputs(run_dir)
    summary = LocalRunSummary(
        out=str(out), run_dir=str(run_dir), mlflow_uri=mlflow_uri, serving_uri=serving_uri,
        seconds=time.perf_counter() - start, stage_seconds=timings,
        outputs={stage: str(path) for stage, path in outputs.items()},
        reports={"demo_catalog": json.loads(Path(demo.out, "report.json").read_text()),
                 **read_reports(outputs)})
    write_report(summary, str(out))
    return summary
