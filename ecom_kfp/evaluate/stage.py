"""The evaluate stage: score a model on the test split, compare with the baseline, decide the blessing.

Writes the :class:`~ecom_kfp.contracts.layouts.EvaluationLayout` files under ``out_uri``:
``metrics.json`` (everything), ``confusion_level_<k>.csv`` (every level), ``coverage.csv`` (every
level), ``report.html``, ``blessing.json`` (with ``model_sha256``, the content digest of the model
scored) and ``report.json`` (headline numbers, timings).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field

from ecom_kfp import uri
from ecom_kfp.contracts.business_value import BusinessValueTable
from ecom_kfp.contracts.digests import BLESSED_MODEL_SHA256
from ecom_kfp.contracts.layouts import EvaluationLayout
from ecom_kfp.evaluate import html_report
from ecom_kfp.evaluate.baseline import resolve_baseline
from ecom_kfp.evaluate.business_value import ExampleWeights, example_weights
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.confusion import ConfusionTable, worst_confusions
from ecom_kfp.evaluate.gate import Blessing, decide
from ecom_kfp.evaluate.inference import TestSetPredictions, predict_test_split
from ecom_kfp.evaluate.inputs import EvaluationInputs, load_inputs
from ecom_kfp.evaluate.metrics import HEADLINE, CoveragePoint, LevelMetrics, level_metrics
from ecom_kfp.evaluate.slices import TOP_LEVEL, load_slice_columns, slice_metrics, top_level_values
from ecom_kfp.report import Timings, to_jsonable, write_report

WORST_CONFUSIONS_PER_LEVEL = 10


@dataclass
class ModelEvaluation:
    """One model scored on one test split."""

    inputs: EvaluationInputs
    predictions: TestSetPredictions
    weights: ExampleWeights
    metrics: list[LevelMetrics]
    curves: dict[int, list[CoveragePoint]]

    def headline(self) -> dict[int, dict[str, float]]:
        """Level -> the :data:`~ecom_kfp.evaluate.metrics.HEADLINE` metrics."""
        return {m.level: {name: getattr(m, name) for name in HEADLINE} for m in self.metrics}


@dataclass
class EvaluateReport:
    """``report.json`` of the evaluate stage."""

    model_uri: str
    data_uri: str
    out_uri: str
    examples: int
    num_levels: int
    blessed: bool
    levels: dict[str, dict[str, float]]
    business_value_source: str
    baseline: str | None
    confusion_level: int
    flagged_slices: int
    test_fingerprint: str
    examples_per_second: float
    timings: dict[str, float] = field(default_factory=dict)


def evaluate_model(model_uri: str, config: EvaluateConfig, table: BusinessValueTable | None) -> ModelEvaluation:
    """Score ``model_uri`` on ``config.data_uri``'s test split (also used for re-evaluating a baseline)."""
    inputs = load_inputs(model_uri, config.data_uri)
    predictions = predict_test_split(inputs, config.batch_size, config.top_k)
    weights = example_weights(predictions.labels, predictions.business_values, inputs.vocabularies, table)
    metrics, curves = [], {}
    for level in predictions.levels:
        level_result, curve = level_metrics(level, weights.at(level.level), config.confidence_threshold,
                                            config.target_precision)
        metrics.append(level_result)
        curves[level.level] = curve
    return ModelEvaluation(inputs, predictions, weights, metrics, curves)


def _coverage_csv(curves: dict[int, list[CoveragePoint]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["level", "threshold", "accepted", "coverage", "precision"])
    for level, curve in curves.items():
        for p in curve:
            writer.writerow([level, f"{p.threshold:.2f}", p.accepted, f"{p.coverage:.6f}",
                             "" if p.precision is None else f"{p.precision:.6f}"])
    return buf.getvalue()


def run(config: EvaluateConfig) -> EvaluateReport:
    """Evaluate, gate and write every output; returns the report.

    Raises:
        FileNotFoundError / ValueError: bad inputs or flags (the message names the flag).
    """
    config.validate()
    timings = Timings()
    with timings.phase("load"):
        table = BusinessValueTable.load(config.business_value_uri) if config.business_value_uri else None
    with timings.phase("inference"):
        evaluation = evaluate_model(config.model_uri, config, table)
    inputs, predictions = evaluation.inputs, evaluation.predictions
    num_levels = inputs.spec.num_levels
    confusion_level = config.confusion_level or num_levels
    if confusion_level > num_levels:
        raise ValueError(f"--confusion-level {confusion_level}: the model has {num_levels} levels")
    with timings.phase("analysis"):
        confusions = [ConfusionTable.most_valuable(p, evaluation.weights.at(p.level), inputs.vocabularies[p.level - 1],
                                                   config.confusion_top_n) for p in predictions.levels]
        worst = [w for p in predictions.levels
                 for w in worst_confusions(p, inputs.vocabularies[p.level - 1], WORST_CONFUSIONS_PER_LEVEL)]
        columns = {TOP_LEVEL: top_level_values(predictions.labels, inputs.vocabularies[0])}
        if config.slice_columns:
            columns.update(load_slice_columns(config.slice_table_uri, config.slice_columns, predictions.product_ids))
        slices = slice_metrics(columns, predictions.levels, evaluation.weights, config.slice_floor,
                               config.slice_min_examples)
    with timings.phase("baseline"):
        baseline, why_none = resolve_baseline(
            config, predictions.fingerprint,
            lambda local_model: evaluate_model(local_model, config, table).headline())
    blessing = decide(evaluation.metrics, config.gate, baseline, why_none)
    with timings.phase("write"):
        _write_outputs(config, evaluation, confusions, worst, slices, blessing, confusion_level)
    report = EvaluateReport(
        model_uri=config.model_uri, data_uri=config.data_uri, out_uri=config.out_uri,
        examples=predictions.examples, num_levels=num_levels, blessed=blessing.blessed,
        levels={str(k): v for k, v in evaluation.headline().items()},
        business_value_source=evaluation.weights.source,
        baseline=baseline.description if baseline else None, confusion_level=confusion_level,
        flagged_slices=sum(s.flagged for s in slices), test_fingerprint=predictions.fingerprint,
        examples_per_second=predictions.examples / max(predictions.seconds, 1e-9),
        timings=timings.seconds)
    write_report(report, config.out_uri)
    return report


def _write_outputs(config: EvaluateConfig, evaluation: ModelEvaluation, confusions: list[ConfusionTable],
                   worst: list[dict], slices: list, blessing: Blessing, confusion_level: int) -> None:
    layout = EvaluationLayout(config.out_uri)
    predictions = evaluation.predictions
    for table in confusions:
        table.write(layout.confusion(table.level))
    uri.write_text(layout.coverage, _coverage_csv(evaluation.curves))
    uri.write_json(layout.metrics, to_jsonable({
        "model_uri": config.model_uri,
        "data_uri": config.data_uri,
        "examples": predictions.examples,
        "test_fingerprint": predictions.fingerprint,
        "business_value_source": evaluation.weights.source,
        "examples_without_value": evaluation.weights.examples_without_value,
        "levels": {str(m.level): asdict(m) for m in evaluation.metrics},
        "worst_confusions": worst,
        "slices": [asdict(s) | {"flagged": s.flagged} for s in slices],
    }))
    # The digest of what was evaluated: push publishes only a model with this content.
    uri.write_json(layout.blessing, to_jsonable(blessing) | {BLESSED_MODEL_SHA256: evaluation.inputs.model_sha256})
    uri.write_text(layout.html, html_report.render(
        title=f"Evaluation of {config.model_uri}", metrics=evaluation.metrics, curves=evaluation.curves,
        confusion=confusions[confusion_level - 1], slices=slices, worst=worst,
        confusion_images=predictions.confusion_images, blessing=blessing,
        business_value_source=evaluation.weights.source))
