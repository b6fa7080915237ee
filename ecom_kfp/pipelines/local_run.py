"""``ecom-kfp run-local``: the whole training pipeline on one machine, no cluster.

Generates the demo catalog under ``<out>/catalog``, serves its images on 127.0.0.1 (so ingest
really downloads them), and runs :func:`~ecom_kfp.pipelines.training.training_pipeline` under
``kfp.local.SubprocessRunner(use_venv=False)`` with its pipeline root at ``<out>/pipeline_root``,
an MLflow sqlite store at ``<out>/mlflow.db`` (unless ``--mlflow-uri``) and the serving copy at
``<out>/serving``; ``--train-seeds 0,1`` trains one model per seed and serves their average. Then
it reads every stage's ``report.json`` from the task outputs, checks that the counts add up from
ingest to push, prints a summary and writes it to ``<out>/report.json``.
When a model was pushed, a fresh slice of the demo catalog is then scored with the champion through
the scoring pipeline (:mod:`ecom_kfp.pipelines.local_scoring`) and its predict summary printed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecom_kfp.console import log_path, progress
from ecom_kfp.contracts.layouts import DatasetLayout, DedupeLayout, EvaluationLayout, PredictionLayout
from ecom_kfp.demo import DemoCatalogConfig
from ecom_kfp.ensemble.config import check_member_seeds
from ecom_kfp.evaluate.config import GateConfig
from ecom_kfp.pipelines.kfp_local import find_run_dir, local_runs
from ecom_kfp.pipelines.local_scoring import score_fresh_slice
from ecom_kfp.predict.cli import summary_lines
from ecom_kfp.report import write_report
from ecom_kfp.settings import require, setting
from ecom_kfp.train.config import FUSIONS, IMAGENET_BACKBONE, IMAGENET_WEIGHTS, TrainConfig
from ecom_kfp.train.tracking import init_store

SPLITS = DatasetLayout.SPLITS

#: stage -> (kfp.local task directory, output artifact holding the stage's layout root)
STAGE_OUTPUTS = {
    "ingest": ("ingest-op", "products"),
    "dedupe": ("dedupe-op", "deduped"),
    "dataset": ("tfrecord-build-op", "dataset"),
    "ensemble": ("ensemble-op", "ensemble"),
    "evaluate": ("evaluate-op", "evaluation"),
    "push": ("push-op", "pushed"),
}
#: The task that runs once per training seed, and its output (``train`` in the summary: a list).
MEMBER_OUTPUT = ("train-op", "model")


@dataclass(frozen=True)
class LocalRunConfig:
    """Flags of ``ecom-kfp run-local`` (``make demo``)."""

    out: str = setting("runs/demo", metavar="DIR", help="output directory of the run")
    products: int = setting(DemoCatalogConfig.products, metavar="N", help="demo catalog size")
    epochs: int = setting(5, metavar="N", help="training epochs")
    image_size: int = setting(64, metavar="PX", help="model input side in pixels (small for CPU)")
    backbone: str = setting("small-cnn", help="image backbone (small-cnn is a tiny CPU-friendly one)")
    fusion: str = setting(TrainConfig.fusion, choices=FUSIONS, help="train --fusion (training_pipeline's fusion)")
    weights: str = setting(TrainConfig.weights, metavar="URI",
                           help=f"train --weights: '{IMAGENET_WEIGHTS}' starts {IMAGENET_BACKBONE} from ImageNet")
    frozen_backbone: bool = setting(TrainConfig.frozen_backbone,
                                    help="train --frozen-backbone: the weights' backbone stays frozen, its features "
                                         "computed once per product (needs --weights)")
    mlflow_uri: str = setting("", metavar="URI",
                              help="MLflow tracking and registry URI (empty: a sqlite store under --out)")
    seed: int = setting(0, help="demo catalog seed")
    train_seeds: list[int] = setting(factory=lambda: [0], metavar="SEED,SEED[,...]",
                                     help="one model per seed; two or more are averaged by the ensemble stage and the "
                                          "average is evaluated and pushed (training_pipeline's seeds)")
    min_class_count: int = setting(3, metavar="N",
                                   help="classes with fewer training products fold into other (small for the demo)")
    batch_size: int = setting(32, metavar="N", help="global training batch size")
    title_attributes: str = setting(
        "colour", metavar="COLUMN,...",
        help="catalog columns the model reads after the title (tfrecord-build --title-attributes); the demo's "
             "colour runs that path from the build to the scoring pipeline's predict")
    # A first run has no champion to compare with, so only this floor stands between a broken
    # model and the registry; the demo model scores about 0.98 at every level.
    min_weighted_score: float = setting(
        0.9, metavar="FRACTION",
        help="gate: business-value-weighted score every level must reach for the model to be blessed and pushed")

    def validate(self) -> None:
        """Fail fast, naming the flag, on values the run cannot use."""
        GateConfig(min_weighted_score=self.min_weighted_score).validate()  # the gate's own range check
        require(((self.products > 0, "--products", self.products, "must be positive"),
                 (self.epochs > 0, "--epochs", self.epochs, "must be positive"),
                 (self.image_size >= 32, "--image-size", self.image_size, "must be at least 32"),
                 (bool(self.out), "--out", self.out, "must name a directory")))
        check_member_seeds(self.train_seeds, "--train-seeds")


@dataclass
class LocalRunSummary:
    """What a local run produced (``<out>/report.json``)."""

    out: str
    run_dir: str
    mlflow_uri: str
    serving_uri: str
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)
    counts_add_up: bool = False
    count_checks: list[dict[str, Any]] = field(default_factory=list)


def _task_outputs(run_dir: Path, task: str, output: str) -> list[Path]:
    """kfp.local writes a task's outputs to ``<run>/<task>/<output>``; tasks of loops and nested
    pipelines sit deeper, so the search does not assume the depth."""
    return sorted(p for p in run_dir.rglob(output) if p.parent.name == task)


def stage_outputs(run_dir: Path) -> dict[str, Any]:
    """Stage -> its output layout root in a kfp.local run (push is absent when not blessed), and
    ``train`` -> the trained members' roots, one per seed."""
    found: dict[str, Any] = {}
    for stage, (task, output) in STAGE_OUTPUTS.items():
        matches = _task_outputs(run_dir, task, output)
        if len(matches) > 1:
            raise RuntimeError(f"{len(matches)} outputs of task {task!r} under {run_dir}: {matches}")
        if matches:
            found[stage] = matches[0]
    if members := _task_outputs(run_dir, *MEMBER_OUTPUT):
        found["train"] = members
    return found


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def read_reports(outputs: dict[str, Any]) -> dict[str, Any]:
    """Every stage's ``report.json`` (``train``: a list, one per member), plus evaluate's metrics and
    blessing and the dataset manifest."""
    reports = {stage: [_read_json(p / "report.json") for p in root] if isinstance(root, list)
               else _read_json(root / "report.json") for stage, root in outputs.items()}
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
    from ecom_kfp.demo import generate, serve_directory
    from ecom_kfp.pipelines.training import PIPELINE_NAME, training_pipeline

    config.validate()
    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    mlflow_uri = config.mlflow_uri or f"sqlite:///{out / 'mlflow.db'}"
    serving_uri = str(out / "serving")
    pipeline_root = out / "pipeline_root"
    timings: dict[str, float] = {}

    start = time.perf_counter()
    init_store(mlflow_uri)
    demo = generate(DemoCatalogConfig(out=str(out / "catalog"), products=config.products,
                                      seed=config.seed))
    timings["demo_catalog"] = time.perf_counter() - start
    progress(f"  {'demo-catalog':<24} {config.products} products in {timings['demo_catalog']:.1f}s")
    with local_runs(pipeline_root):
        with serve_directory(demo.images) as images_base:
            pipeline_start = time.perf_counter()
            training_pipeline(
                catalog=demo.catalog, catalog_format="jsonl", images_base=images_base,
                business_value_uri=demo.business_value, image_size=config.image_size,
                min_class_count=config.min_class_count, title_attributes=config.title_attributes,
                backbone=config.backbone, fusion=config.fusion, weights=config.weights,
                frozen_backbone=config.frozen_backbone, epochs=config.epochs, batch_size=config.batch_size,
                num_gpus=1, train_preset="cpu-small", seeds=config.train_seeds, mlflow_tracking_uri=mlflow_uri,
                serving_uri=serving_uri, ingest_concurrency=16, min_weighted_score=config.min_weighted_score,
                allow_private_networks=True)  # the demo's images are served on loopback
            timings["pipeline"] = time.perf_counter() - pipeline_start
        run_dir = find_run_dir(pipeline_root, PIPELINE_NAME)
        outputs = stage_outputs(run_dir)
        scoring = {}
        if "push" in outputs:  # the champion exists: score a fresh slice with it
            scoring_start = time.perf_counter()
            pushed_name = _read_json(outputs["push"] / "report.json")["registered_model_name"]
            scoring["scoring"] = score_fresh_slice(out, pipeline_root, mlflow_uri, pushed_name, config.products,
                                                   config.seed)
            timings["scoring"] = time.perf_counter() - scoring_start
    summary = LocalRunSummary(
        out=str(out), run_dir=str(run_dir), mlflow_uri=mlflow_uri, serving_uri=serving_uri,
        seconds=time.perf_counter() - start, stage_seconds=timings,
        outputs={stage: [str(p) for p in path] if isinstance(path, list) else str(path)
                 for stage, path in outputs.items()},
        reports={"demo_catalog": json.loads(Path(demo.out, "report.json").read_text()),
                 **read_reports(outputs), **scoring})
    checks = count_checks(summary.reports)
    summary.count_checks = [{"what": c.what, "expected": c.expected, "actual": c.actual}
                            for c in checks]
    summary.counts_add_up = all(c.ok for c in checks)
    write_report(summary, str(out))
    return summary


@dataclass(frozen=True)
class CountCheck:
    """One place where two stages must agree on a count."""

    what: str
    expected: int
    actual: int

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


def count_checks(reports: dict[str, Any]) -> list[CountCheck]:
    """Every product accounted for from the catalog to the evaluated test split."""
    demo, ingest, dedupe = reports["demo_catalog"], reports["ingest"], reports["dedupe"]
    dataset, members, evaluate = reports["dataset"], reports["train"], reports["evaluate"]
    return [
        CountCheck("catalog lines = ingest input", demo["products"], ingest["input_records"]),
        CountCheck("ingest input = accepted + rejected", ingest["input_records"],
                   ingest["accepted"] + ingest["rejected"]),
        CountCheck("ingest accepted = dedupe input", ingest["accepted"], dedupe["input"]),
        CountCheck("dedupe input = kept + duplicates + rejected", dedupe["input"],
                   dedupe["kept"] + dedupe["duplicates"] + dedupe["rejected"]),
        CountCheck("dedupe kept = tfrecord-build input", dedupe["kept"],
                   dataset["input_products"]),
        CountCheck("tfrecord-build input = records + rejected", dataset["input_products"],
                   dataset["records"] + dataset["rejected"]),
        CountCheck("records = train + val + test", dataset["records"],
                   sum(dataset["splits"].values())),
        *[CountCheck(f"{split} records = records train read" + (f" (member {i + 1})" if len(members) > 1 else ""),
                     dataset["splits"][split], train["counts"][split])
          for i, train in enumerate(members) for split in SPLITS],
        CountCheck("models trained = models averaged", len(members), len(reports["ensemble"]["members"])),
        CountCheck("test records = examples evaluated", dataset["splits"]["test"],
                   evaluate["examples"]),
    ]


def _by_reason(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def format_summary(summary: LocalRunSummary) -> str:
    """The human summary ``run-local`` prints (the numbers come from the stages' reports)."""
    r = summary.reports
    ingest, dedupe, dataset = r["ingest"], r["dedupe"], r["dataset"]
    members, evaluate, blessing, push = r["train"], r["evaluate"], r["blessing"], r.get("push")
    checks = count_checks(r)
    bad = [c for c in checks if not c.ok]
    levels = "; ".join(f"level {k}: accuracy {v['accuracy']:.3f}, weighted score "
                       f"{v['weighted_score']:.3f}" for k, v in sorted(evaluate["levels"].items()))
    pushed = (f"{push['registered_model_name']} version {push['version']} "
              f"(aliases {', '.join(push['aliases'])}) in MLflow {summary.mlflow_uri}; serving copy "
              f"{push['serving_uri']}" if push else "not pushed (not blessed)")
    lines = [
        f"ecom-kfp run-local: {summary.out} in {summary.seconds:.1f}s "
        f"(demo catalog {summary.stage_seconds['demo_catalog']:.1f}s, "
        f"pipeline {summary.stage_seconds['pipeline']:.1f}s)",
        f"  products in       {ingest['input_records']} catalog lines",
        f"  ingest            accepted {ingest['accepted']}, rejected {ingest['rejected']}"
        + (f": {_by_reason(ingest['rejects_by_reason'])}" if ingest["rejects_by_reason"] else ""),
        f"  dedupe            kept {dedupe['kept']}, duplicates removed {dedupe['duplicates']} "
        f"in {dedupe['duplicate_groups']} groups, rejected {dedupe['rejected']}",
        "  tfrecord-build    " + ", ".join(f"{s} {dataset['splits'][s]}" for s in SPLITS)
        + f" records; rejected {dataset['rejected']}"
        + (f": {_by_reason(dataset['rejected_by_reason'])}" if dataset["rejected_by_reason"] else ""),
        f"  train             {_train_line(members)}",
        f"  ensemble          {_ensemble_line(r['ensemble'])}",
        f"  evaluate          {levels}",
        f"  blessed           {'yes' if blessing['blessed'] else 'no'}: "
        f"{'; '.join(blessing['reasons'])}",
        f"  push              {pushed}",
        "  counts add up     " + ("yes, " + f"{len(checks)} checks" if not bad else
                                  "NO: " + "; ".join(f"{c.what}: {c.expected} != {c.actual}"
                                                     for c in bad)),
    ]
    if "scoring" in r:
        planted = r["scoring"]["planted_label_errors"]
        lines += ["fresh demo slice scored with the champion (scoring pipeline):",
                  *("  " + line for line in summary_lines(r["scoring"])),
                  f"  planted wrong labels: {planted['flagged']} of {planted['scored']} scored flagged suspect "
                  f"({planted['planted']} planted, {planted['suspects']} suspects in all)"]
    return "\n".join(lines + where_to_look(summary))


def _train_line(members: list[dict[str, Any]]) -> str:
    first, plural = members[0], "s" if len(members) > 1 else ""
    runs = ", ".join(m["mlflow_run_id"] or "-" for m in members)
    return (f"{len(members)} model{plural}, {first['backbone']}, {first['epochs_trained']} epoch(s), "
            f"MLflow run{plural} {runs}")


def _ensemble_line(ensemble: dict[str, Any]) -> str:
    if len(ensemble["members"]) == 1:
        return "one model, published unchanged"
    return (f"{len(ensemble['members'])} models averaged, weights "
            + ", ".join(f"{w:.2f}" for w in ensemble["weights"]))


def where_to_look(summary: LocalRunSummary) -> list[str]:
    """The closing lines of the summary: the pages to open and how to browse MLflow."""
    pages = {"report": Path(summary.out) / "report.json"}
    if "evaluate" in summary.outputs:
        pages["evaluation"] = Path(EvaluationLayout(summary.outputs["evaluate"]).html)
    if "dedupe" in summary.outputs:
        pages["duplicates"] = Path(DedupeLayout(summary.outputs["dedupe"]).samples_html)
    if "scoring" in summary.reports:
        pages["predictions"] = Path(PredictionLayout(summary.reports["scoring"]["outputs"]).html)
    if (log := log_path()) is not None:
        pages["log"] = log
    lines = ["where to look:"]
    lines += [f"  {name:<16}  {path}" for name, path in pages.items()]
    mlflow_ui = f"mlflow ui --backend-store-uri {summary.mlflow_uri} --port 5000"
    lines.append(f"  {'MLflow UI':<16}  .venv/bin/{mlflow_ui}  (then open http://127.0.0.1:5000)")
    return lines
