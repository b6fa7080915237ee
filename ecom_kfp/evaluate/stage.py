"""The evaluate stage: score a model on the test split, compare with the baseline, decide the blessing.

Writes the :class:`~ecom_kfp.contracts.layouts.EvaluationLayout` files under ``out_uri``:
``metrics.json`` (everything), ``confusion_level_<k>.csv`` (every level), ``coverage.csv`` (every
level, calibrated confidence), ``thresholds.json`` (the per-level threshold reaching the target
precision and the temperatures, which push serves beside the labels), ``suspect_labels.csv``,
``report.html``, ``blessing.json`` (with ``model_sha256``, the content digest of the model scored)
and ``report.json`` (headline numbers, timings).

Order of work: temperatures are fitted on (a sample of) the validation split, or on the test split
itself by cross-fitting when the model may have been trained on val (its verified ``training.json``
says so, ``--fit-on-val``, or the model has none), before any threshold is chosen, so every
threshold on the test split is chosen on calibrated probabilities.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field

import numpy as np

from ecom_kfp import uri
from ecom_kfp.contracts.business_value import BusinessValueTable
from ecom_kfp.contracts.digests import BLESSED_MODEL_SHA256
from ecom_kfp.contracts.layouts import EvaluationLayout, ModelLayout
from ecom_kfp.contracts.serving import LevelThreshold, Thresholds
from ecom_kfp.contracts.training import TrainingRecord
from ecom_kfp.evaluate import html_report
from ecom_kfp.evaluate.baseline import resolve_baseline
from ecom_kfp.evaluate.business_value import ExampleWeights, example_weights
from ecom_kfp.evaluate.calibration import (
    LevelCalibration,
    calibrate_level,
    fit_temperature,
    fit_temperature_cross_checked,
    temperature_scale,
)
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.confusion import ConfusionTable, worst_confusions
from ecom_kfp.evaluate.gate import Blessing, decide
from ecom_kfp.evaluate.inference import SplitScores, read_images, score_split
from ecom_kfp.evaluate.inputs import EvaluationInputs, open_inputs
from ecom_kfp.evaluate.metrics import HEADLINE, CoveragePoint, LevelMetrics, LevelPredictions, level_metrics
from ecom_kfp.evaluate.slices import TOP_LEVEL, load_slice_columns, slice_metrics, top_level_values
from ecom_kfp.evaluate.suspects import LevelSuspects, Suspect, level_suspects, suspects_csv
from ecom_kfp.evaluate.tail import TailSlice, folded_mask, tail_slice, train_class_counts, true_class_names
from ecom_kfp.report import Timings, to_jsonable, write_report

WORST_CONFUSIONS_PER_LEVEL = 10
#: Misclassified example images shown per worst confusion, and suspect labels shown with images.
EXAMPLES_PER_CONFUSION = 3
SUSPECTS_SHOWN = 30
#: Validation examples the temperatures are fitted on: one number per level needs few, and the
#: full softmax of each is kept in memory.
CALIBRATION_EXAMPLES = 20_000


@dataclass
class ModelEvaluation:
    """One model scored on one test split.

    Attributes:
        inputs: The checked model and dataset.
        scores: The model's outputs on the test split.
        weights: Business value per example.
        levels: Per-level predictions (calibrated confidence, folded examples marked).
        metrics: Per-level metrics.
        curves: Per-level precision/coverage curve (calibrated confidence).
        class_names: Per level, each test example's real class name.
        fitted: The temperatures and where they come from.
    """

    inputs: EvaluationInputs
    scores: SplitScores
    weights: ExampleWeights
    levels: list[LevelPredictions]
    metrics: list[LevelMetrics]
    curves: dict[int, list[CoveragePoint]]
    class_names: list[list[str]]
    fitted: FittedTemperatures

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
    test_records: int | None = None
    sampled: bool = False
    calibration: dict[str, dict[str, float]] = field(default_factory=dict)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    tail: dict[str, dict[str, float | None]] = field(default_factory=dict)
    suspect_labels: dict[str, dict[str, float | None]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FittedTemperatures:
    """Per-level temperatures and where they come from.

    Attributes:
        values: Per level (1.0 where not fitted).
        examples: Examples they were fitted on.
        split: The split they were fitted on (``val``, or ``test`` for a model trained on val).
        note: Why they are 1.0, or fitted on test, when they are.
        folds: Per level, for a temperature fitted on the test split and kept, the fold
            temperatures it was judged by (:func:`~ecom_kfp.evaluate.calibration.fit_temperature_cross_checked`);
            empty otherwise.
    """

    values: list[float]
    examples: int = 0
    split: str = ""
    note: str = ""
    folds: list[tuple[float, ...]] = field(default_factory=list)

    def folds_of(self, level: int) -> tuple[float, ...]:
        """The fold temperatures of ``level`` (1-based), empty when there are none."""
        return self.folds[level - 1] if self.folds else ()


def _val_unseen_note(model: ModelLayout) -> str:
    """Why the validation split cannot calibrate ``model`` (its verified copy), or "" when it can.

    Read from ``training.json``, which the model's digests cover: a model whose validation split
    was in its training data looks right on it and would get over-confident temperatures.
    """
    record = TrainingRecord.read(model)
    if record is None:
        return ("the model does not record the splits it was trained on (no training.json: written by an older "
                "ecom-kfp or another tool) and may have been trained on the validation split")
    if record.trained_on_val:
        return "the model was trained on the validation split too (--fit-on-val)"
    return ""


def _temperatures(inputs: EvaluationInputs, config: EvaluateConfig, test: SplitScores) -> FittedTemperatures:
    """Per-level temperatures, fitted on validation, or on ``test`` when the model was trained on val."""
    ones = [1.0] * len(inputs.vocabularies)
    if not config.calibrate:
        return FittedTemperatures(ones, note="calibration off (--no-calibrate)")
    reason = _val_unseen_note(inputs.model)
    if reason:
        checked = [fit_temperature_cross_checked(p, test.labels[:, k]) for k, p in enumerate(test.probabilities)]
        return FittedTemperatures([t for t, _ in checked], test.examples, "test",
                                  f"{reason}, so the temperatures are fitted on the test split and judged there "
                                  "by 2-fold cross-fitting; a level where that does not lower the held-out NLL "
                                  "keeps temperature 1", [folds for _, folds in checked])
    val = score_split(inputs, "val", config.batch_size, limit=CALIBRATION_EXAMPLES)
    if not val.examples:
        return FittedTemperatures(ones, note=f"no validation records under {inputs.dataset.split_dir('val')}: "
                                             "not calibrated")
    return FittedTemperatures([fit_temperature(p, val.labels[:, k]) for k, p in enumerate(val.probabilities)],
                              val.examples, "val")


def evaluate_model(model_uri: str, config: EvaluateConfig, table: BusinessValueTable | None,
                   calibrate: bool = True, private: bool = False) -> ModelEvaluation:
    """Score ``model_uri`` on ``config.data_uri``'s test split (also used for re-evaluating a baseline).

    Args:
        model_uri: The model.
        config: The stage config.
        table: Business value table, if any.
        calibrate: Fit temperatures (as ``config.calibrate`` says); a baseline's headline metrics
            do not need them.
        private: ``model_uri`` is this process's own download (:func:`open_inputs`).
    """
    with open_inputs(model_uri, config.data_uri, private) as inputs:
        scores = score_split(inputs, "test", config.batch_size, limit=config.max_test_examples or None)
        if not scores.examples:
            raise ValueError(f"--data {inputs.dataset.root}: the test split has no records "
                             f"({len(inputs.test_shards)} empty shard(s))")
        fitted = (_temperatures(inputs, config, scores) if calibrate
                  else FittedTemperatures([1.0] * len(inputs.vocabularies), note="not calibrated"))
        weights = example_weights(scores.labels, scores.business_values, inputs.vocabularies, table)
        names = true_class_names(scores.category_paths, scores.labels, inputs.vocabularies)
        counts = train_class_counts(inputs.manifest, len(inputs.vocabularies))
        levels, metrics, curves = [], [], {}
        for k, vocabulary in enumerate(inputs.vocabularies):
            level = LevelPredictions.from_probabilities(
                k + 1, scores.probabilities[k], scores.labels[:, k], config.top_k, fitted.values[k],
                folded_mask(names[k], vocabulary, counts[k] if counts else None))
            level_result, curve = level_metrics(level, weights.at(k + 1), config.confidence_threshold,
                                                config.target_precision)
            levels.append(level)
            metrics.append(level_result)
            curves[k + 1] = curve
        return ModelEvaluation(inputs, scores, weights, levels, metrics, curves, names, fitted)


def _float32_floor(value: float) -> float:
    """The largest float32 not above ``value``."""
    single = np.float32(value)
    return float(np.nextafter(single, np.float32(-np.inf)) if float(single) > value else single)


def chosen_thresholds(evaluation: ModelEvaluation, target_precision: float) -> Thresholds:
    """``thresholds.json``: per level the exact threshold reaching ``target_precision`` and its curve.

    A level where no threshold reaches the target gets threshold 1.0 (accept only certain answers)
    with the precision and coverage found there (0 when nothing is that certain). A threshold is
    rounded down to float32: consumers calibrate the signature's float32 output and get float32
    confidences, and the product that set the threshold must still pass it.
    """
    levels = []
    for m in evaluation.metrics:
        curve = [p for p in evaluation.curves[m.level] if p.precision is not None]
        if m.threshold_for_target_precision is None:
            at_one = evaluation.curves[m.level][-1]
            chosen = (1.0, at_one.precision or 0.0, at_one.coverage)
        else:
            chosen = (m.threshold_for_target_precision, m.precision_at_target_threshold,
                      m.coverage_at_target_precision)
        levels.append(LevelThreshold(level=m.level, threshold=_float32_floor(chosen[0]), precision=chosen[1],
                                     coverage=chosen[2],
                                     curve_threshold=tuple(p.threshold for p in curve),
                                     curve_precision=tuple(p.precision for p in curve),
                                     curve_coverage=tuple(p.coverage for p in curve)))
    return Thresholds(target_precision, tuple(levels), tuple(evaluation.fitted.values))


def _coverage_csv(curves: dict[int, list[CoveragePoint]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["level", "threshold", "accepted", "coverage", "precision"])
    for level, curve in curves.items():
        for p in curve:
            writer.writerow([level, f"{p.threshold:.2f}", p.accepted, f"{p.coverage:.6f}",
                             "" if p.precision is None else f"{p.precision:.6f}"])
    return buf.getvalue()


@dataclass
class Analysis:
    """Everything beyond the headline metrics that the outputs show."""

    confusions: list[ConfusionTable]
    worst: list[dict]
    slices: list
    calibration: list[LevelCalibration]
    thresholds: Thresholds
    tail: list[TailSlice]
    suspects: list[LevelSuspects]
    suspect_rows: list[Suspect]
    confusion_images: dict[tuple[int, int, int], list[bytes]]
    suspect_images: dict[str, bytes]


def _analyse(evaluation: ModelEvaluation, config: EvaluateConfig) -> Analysis:
    inputs, scores = evaluation.inputs, evaluation.scores
    confusions = [ConfusionTable.most_valuable(p, evaluation.weights.at(p.level), inputs.vocabularies[p.level - 1],
                                               config.confusion_top_n) for p in evaluation.levels]
    worst = [w for p in evaluation.levels
             for w in worst_confusions(p, inputs.vocabularies[p.level - 1], WORST_CONFUSIONS_PER_LEVEL)]
    columns = {TOP_LEVEL: top_level_values(scores.labels, inputs.vocabularies[0])}
    if config.slice_columns:
        columns.update(load_slice_columns(config.slice_table_uri, config.slice_columns, scores.product_ids))
    slices = slice_metrics(columns, evaluation.levels, evaluation.weights, config.slice_floor,
                           config.slice_min_examples)
    fitted = evaluation.fitted
    calibration = [calibrate_level(p.level, fitted.values[p.level - 1], fitted.examples, fitted.split,
                                   scores.probabilities[p.level - 1], p.y_true, p.correct, fitted.folds_of(p.level))
                   for p in evaluation.levels]
    counts = train_class_counts(inputs.manifest, len(inputs.vocabularies))
    tail = [tail_slice(p, evaluation.class_names[p.level - 1], counts[p.level - 1], config.tail_train_examples)
            for p in evaluation.levels] if counts else []
    suspects, suspect_rows = [], []
    if config.suspect_labels:
        for p in evaluation.levels:
            calibrated = temperature_scale(scores.probabilities[p.level - 1], evaluation.fitted.values[p.level - 1],
                                           dtype=np.float32)
            summary, rows = level_suspects(p, calibrated, inputs.vocabularies[p.level - 1], scores.product_ids,
                                           scores.titles, evaluation.class_names[p.level - 1])
            suspects.append(summary)
            suspect_rows.extend(rows)
    # Images of the worst confusions and of the deepest level's top suspects, in one extra read.
    confusion_examples: dict[tuple[int, int, int], list[str]] = {}
    for w in worst:
        p = evaluation.levels[w["level"] - 1]
        hits = np.flatnonzero((p.y_true == w["true_id"]) & (p.y_pred == w["predicted_id"]) & ~p.folded)
        confusion_examples[(w["level"], w["true_id"], w["predicted_id"])] = [
            scores.product_ids[i] for i in hits[:EXAMPLES_PER_CONFUSION]]
    deepest = len(inputs.vocabularies)
    shown = [s.product_id for s in suspect_rows if s.level == deepest][:SUSPECTS_SHOWN]
    images = read_images(inputs, {pid for ids in confusion_examples.values() for pid in ids} | set(shown))
    return Analysis(confusions, worst, slices, calibration, chosen_thresholds(evaluation, config.target_precision),
                    tail, suspects, suspect_rows,
                    {key: [images[pid] for pid in ids if pid in images] for key, ids in confusion_examples.items()},
                    {pid: images[pid] for pid in shown if pid in images})


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
        evaluation = evaluate_model(config.model_uri, config, table, calibrate=True)
    inputs, scores = evaluation.inputs, evaluation.scores
    num_levels = inputs.spec.num_levels
    confusion_level = config.confusion_level or num_levels
    if confusion_level > num_levels:
        raise ValueError(f"--confusion-level {confusion_level}: the model has {num_levels} levels")
    with timings.phase("analysis"):
        analysis = _analyse(evaluation, config)
    with timings.phase("baseline"):
        baseline, why_none = resolve_baseline(
            config, scores.fingerprint,
            lambda model, private: evaluate_model(model, config, table, calibrate=False, private=private).headline())
    blessing = decide(evaluation.metrics, config.gate, baseline, why_none)
    with timings.phase("write"):
        _write_outputs(config, evaluation, analysis, blessing, confusion_level)
    report = EvaluateReport(
        model_uri=config.model_uri, data_uri=config.data_uri, out_uri=config.out_uri,
        examples=scores.examples, num_levels=num_levels, blessed=blessing.blessed,
        levels={str(k): v for k, v in evaluation.headline().items()},
        business_value_source=evaluation.weights.source,
        baseline=baseline.description if baseline else None, confusion_level=confusion_level,
        flagged_slices=sum(s.flagged for s in analysis.slices), test_fingerprint=scores.fingerprint,
        examples_per_second=scores.examples / max(scores.seconds, 1e-9),
        test_records=inputs.test_records,
        sampled=_sampled(config, evaluation),
        calibration={str(c.level): {"temperature": c.temperature, "ece_before": c.ece_before,
                                    "ece_after": c.ece_after} for c in analysis.calibration},
        thresholds={str(t.level): {"threshold": t.threshold, "precision": t.precision, "coverage": t.coverage}
                    for t in analysis.thresholds.levels},
        tail={str(t.level): {"examples": t.tail_examples, "accuracy": t.tail_accuracy,
                             "folded_examples": t.folded_examples} for t in analysis.tail},
        suspect_labels={str(s.level): {"count": s.count, "accuracy_without_suspects": s.accuracy_without_suspects}
                        for s in analysis.suspects},
        timings=timings.seconds)
    write_report(report, config.out_uri)
    return report


def _sampled(config: EvaluateConfig, evaluation: ModelEvaluation) -> bool:
    """Whether ``--max-test-examples`` left test records unscored: the one rule the page and the CLI follow.

    Without the split's size (a manifest without counts), scoring at least the bound is taken as the
    bound having stopped it; a split that happens to end exactly there is then called a sample too.
    """
    bound, total, scored = config.max_test_examples, evaluation.inputs.test_records, evaluation.scores.examples
    return bool(bound) and (scored < total if total is not None else scored >= bound)


def _sample_note(config: EvaluateConfig, evaluation: ModelEvaluation) -> str:
    """Says how many test records were scored when ``--max-test-examples`` made them a sample; else ""."""
    if not _sampled(config, evaluation):
        return ""
    total = evaluation.inputs.test_records
    of = f" of the test split's {total}" if total is not None else ""
    return (f"Scored {evaluation.scores.examples} test records{of} (--max-test-examples {config.max_test_examples}): "
            "the first ones in the build's pseudo-random order, a fair sample. The metrics, the thresholds and the "
            "comparison with the baseline are computed on them.")


def _without_bins(calibration: LevelCalibration) -> dict:
    return {k: v for k, v in asdict(calibration).items() if not k.startswith("reliability")}


def _write_outputs(config: EvaluateConfig, evaluation: ModelEvaluation, analysis: Analysis, blessing: Blessing,
                   confusion_level: int) -> None:
    layout = EvaluationLayout(config.out_uri)
    scores = evaluation.scores
    for table in analysis.confusions:
        table.write(layout.confusion(table.level))
    uri.write_text(layout.coverage, _coverage_csv(evaluation.curves))
    uri.write_text(layout.thresholds, analysis.thresholds.to_json())
    uri.write_text(layout.suspect_labels, suspects_csv(analysis.suspect_rows))
    uri.write_json(layout.metrics, to_jsonable({
        "model_uri": config.model_uri,
        "data_uri": config.data_uri,
        "examples": scores.examples,
        # The split's size, and the bound that may have made the scored examples a sample of it.
        "test_records": evaluation.inputs.test_records,
        "max_test_examples": config.max_test_examples,
        "test_fingerprint": scores.fingerprint,
        "business_value_source": evaluation.weights.source,
        "examples_without_value": evaluation.weights.examples_without_value,
        "levels": {str(m.level): asdict(m) for m in evaluation.metrics},
        "calibration": {"note": evaluation.fitted.note,
                        "levels": {str(c.level): _without_bins(c) for c in analysis.calibration}},
        "thresholds": analysis.thresholds.to_dict(),
        "tail": {"note": "" if analysis.tail else "the dataset manifest has no training counts",
                 "records_carry_category_path": any(scores.category_paths),
                 "levels": {str(t.level): asdict(t) for t in analysis.tail}},
        "suspect_labels": {"method": "cleanlab.filter.find_label_issues (self_confidence ranking) on calibrated "
                                     "test probabilities" if config.suspect_labels else "off (--no-suspect-labels)",
                           "levels": {str(s.level): asdict(s) for s in analysis.suspects}},
        "worst_confusions": analysis.worst,
        "slices": [asdict(s) | {"flagged": s.flagged} for s in analysis.slices],
    }))
    # The digest of what was evaluated: push publishes only a model with this content.
    uri.write_json(layout.blessing, to_jsonable(blessing) | {BLESSED_MODEL_SHA256: evaluation.inputs.model_sha256})
    uri.write_text(layout.html, html_report.render(
        title=f"Evaluation of {config.model_uri}", evaluation=evaluation, analysis=analysis,
        confusion_level=confusion_level, blessing=blessing, sample=_sample_note(config, evaluation)))
