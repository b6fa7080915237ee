"""``report.html``: one self-contained page (plots as base64 PNG, example images inline) for the
Kubeflow UI's HTML viewer, which shows a single file and cannot fetch neighbours."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ecom_kfp.contracts.serving import Thresholds
from ecom_kfp.evaluate.calibration import ECE_BINS, LevelCalibration, ReliabilityBin
from ecom_kfp.evaluate.confusion import ConfusionTable
from ecom_kfp.evaluate.gate import Blessing
from ecom_kfp.evaluate.metrics import CoveragePoint, LevelMetrics
from ecom_kfp.evaluate.suspects import Suspect

if TYPE_CHECKING:  # pragma: no cover
    from ecom_kfp.evaluate.stage import Analysis, ModelEvaluation

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td.l{text-align:left}
.bad{background:#fdd}.ok{background:#dfd}img.ex{height:64px;margin:1px}"""


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], row_classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        cells = "".join(f'<td class="l">{_fmt(v)}</td>' if isinstance(v, str) else f"<td>{_fmt(v)}</td>" for v in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _metrics_plot(metrics: Sequence[LevelMetrics]) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(metrics))
    for offset, (name, label) in zip((-0.25, 0, 0.25), (("accuracy", "accuracy"), ("weighted_score", "business-value weighted"),
                                                        ("top_k_accuracy", "top-k accuracy")), strict=True):
        axis.bar(x + offset, [getattr(m, name) for m in metrics], width=0.25, label=label)
    axis.set_xticks(x, [f"level {m.level}" for m in metrics])
    axis.set_ylim(0, 1)
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title("Accuracy and business-value-weighted score per level")
    return _png(figure)


def _coverage_plot(curves: dict[int, list[CoveragePoint]], threshold: float, chosen: Thresholds) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5))
    for level, curve in curves.items():
        line, = axis.plot([p.coverage for p in curve], [np.nan if p.precision is None else p.precision for p in curve],
                          label=f"level {level}")
        at = [p for p in curve if p.threshold >= threshold]
        if at and at[0].precision is not None:
            axis.plot([at[0].coverage], [at[0].precision], "o", color=line.get_color())
        published = chosen.levels[level - 1]
        axis.plot([published.coverage], [published.precision], "*", markersize=11, color=line.get_color())
    axis.axhline(chosen.target_precision, linestyle=":", color="grey")
    axis.set_xlabel("coverage (share of products accepted)")
    axis.set_ylabel("precision of accepted")
    axis.set_xlim(0, 1.02)
    axis.set_ylim(top=1.01)  # a level at precision 1.0 stays inside the frame
    axis.set_title(f"Precision vs coverage over calibrated thresholds\n(dot: threshold {threshold:g}; star: "
                   f"published threshold for precision {chosen.target_precision:g})", fontsize=10)
    axis.legend(fontsize=8)
    return _png(figure)


def _confusion_plot(table: ConfusionTable) -> str:
    import matplotlib.pyplot as plt

    size = min(14, 3 + 0.25 * len(table.categories))
    figure, axis = plt.subplots(figsize=(size, size))
    rows = table.matrix.sum(axis=1, keepdims=True)
    axis.imshow(table.matrix / np.maximum(rows, 1), cmap="Blues", vmin=0, vmax=1)
    names = [c if len(c) <= 40 else "…" + c[-39:] for c in table.categories]
    axis.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    axis.set_yticks(range(len(names)), names, fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"Level {table.level} confusion (row-normalised), most valuable classes")
    return _png(figure)


def _images(jpegs: Sequence[bytes]) -> str:
    return "".join(f'<img class="ex" alt="example" src="data:image/jpeg;base64,{base64.b64encode(j).decode()}">'
                   for j in jpegs)


#: Bins of fewer products are drawn hollow and off the line: their accuracy's standard error is over 0.2,
#: and a line to a one-product bin reads as a trend that is not there.
LINE_MIN_EXAMPLES = 5


def split_bins(bins: Sequence[ReliabilityBin]) -> tuple[list[ReliabilityBin], list[ReliabilityBin]]:
    """The non-empty bins a reliability line joins, and those too small to be on it (:data:`LINE_MIN_EXAMPLES`)."""
    used = [b for b in bins if b.examples]
    return ([b for b in used if b.examples >= LINE_MIN_EXAMPLES],
            [b for b in used if b.examples < LINE_MIN_EXAMPLES])


def _reliability_plot(calibration: Sequence[LevelCalibration]) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(calibration), figsize=(3.6 * len(calibration), 3.4), squeeze=False)
    for axis, c in zip(axes[0], calibration, strict=True):
        axis.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
        for bins, label in ((c.reliability_before, f"model (ECE {c.ece_before:.3f})"),
                            (c.reliability_after, f"T={c.temperature:.2f} (ECE {c.ece_after:.3f})")):
            joined, loose = split_bins(bins)
            largest = max(b.examples for b in (*joined, *loose))
            line, = axis.plot([b.mean_confidence for b in joined], [b.accuracy for b in joined], "-", linewidth=1,
                              label=label)
            # Marker area grows with the bin's examples: a bin of two products should not look like a finding.
            for group, face in ((joined, line.get_color()), (loose, "none")):
                axis.scatter([b.mean_confidence for b in group], [b.accuracy for b in group], facecolors=face,
                             edgecolors=line.get_color(), s=[4 + 60 * b.examples / largest for b in group])
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel("confidence (top probability)")
        axis.set_title(f"level {c.level}")
        axis.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("accuracy")
    figure.suptitle("Reliability on the test split before and after temperature scaling (marker size: examples; "
                    f"hollow: under {LINE_MIN_EXAMPLES})", y=1.04)
    return _png(figure)


def _suspect_rows(suspects: Sequence[Suspect], images: dict[str, bytes]) -> str:
    rows = "".join(
        f'<tr><td>{s.rank}</td><td class="l">{_images([images[s.product_id]] if s.product_id in images else [])}</td>'
        f'<td class="l">{html.escape(s.product_id)}</td><td class="l">{html.escape(s.title)}</td>'
        f'<td class="l">{html.escape(s.given)}</td><td class="l">{html.escape(s.predicted)}</td>'
        f"<td>{s.confidence:.3f}</td><td>{s.given_probability:.3f}</td></tr>" for s in suspects)
    return ("<table><tr><th>rank</th><th>image</th><th>product</th><th>title as the model reads it</th><th>given label</th>"
            f"<th>predicted</th><th>confidence</th><th>p(given)</th></tr>{rows}</table>")


def _tail_section(analysis: Analysis) -> str:
    if not analysis.tail:
        return "<p>The dataset manifest has no training counts: no tail slice.</p>"
    bound = analysis.tail[0].tail_train_examples
    table = _table(["level", "tail classes in test", "tail examples", "tail accuracy", "of which folded into other",
                    "head examples", "head accuracy", "unseen-class examples", "unseen accuracy"],
                   [[t.level, t.tail_classes, t.tail_examples, t.tail_accuracy, t.folded_examples, t.head_examples,
                     t.head_accuracy, t.unseen_examples, t.unseen_accuracy] for t in analysis.tail])
    return (f"<p>Tail: classes with 1 to {bound - 1} training examples. A product of a class folded into "
            "<i>other</i> counts as an error whatever the model answers (it cannot name the class); a class "
            "never seen in training is right only as <i>other</i>.</p>" + table)


def _suspect_section(analysis: Analysis, deepest: int) -> str:
    if not analysis.suspects:
        return "<p>Suspect-label search is off.</p>"
    summary = _table(["level", "suspect labels", "accuracy (all test products)",
                      "accuracy with suspects set aside", "products left"],
                     [[s.level, s.count, s.accuracy, s.accuracy_without_suspects, s.examples_without_suspects]
                      for s in analysis.suspects])
    shown = [s for s in analysis.suspect_rows if s.level == deepest][:len(analysis.suspect_images) or None]
    return ("<p>Products whose recorded label the model's calibrated out-of-sample probabilities contradict "
            "(cleanlab confident learning), most likely first. They are candidates for a person to check, not "
            "proven errors; the plain accuracy is the figure of record, the one with suspects set aside is shown "
            f"beside it for comparison only. Full list: suspect_labels.csv.</p>{summary}"
            f"<h3>Level {deepest}, top {len(shown)}</h3>{_suspect_rows(shown, analysis.suspect_images)}")


def render(*, title: str, evaluation: ModelEvaluation, analysis: Analysis, confusion_level: int,
           blessing: Blessing, sample: str = "") -> str:
    """The whole page; ``sample`` says how the test records scored were sampled, when they were."""
    metrics = evaluation.metrics
    verdict = "BLESSED" if blessing.blessed else "NOT BLESSED"
    headline = _table(
        ["level", "examples", "accuracy", "weighted score", "top-k", "k", "macro F1", "weighted F1", "log loss",
         "precision @ threshold", "coverage @ threshold"],
        [[m.level, m.examples, m.accuracy, m.weighted_score, m.top_k_accuracy, m.k, m.macro_f1, m.weighted_f1,
          m.log_loss, m.precision_at_threshold, m.coverage_at_threshold] for m in metrics])
    checks = _table(["check", "kind", "value", "threshold", "baseline", "passed"],
                    [[c.name, c.kind, c.value, c.threshold, c.baseline_value, str(c.passed)] for c in blessing.checks],
                    ["ok" if c.passed else "bad" for c in blessing.checks])
    calibration = _table(["level", "temperature", "fitted on (examples)", "ECE before", "ECE after",
                          "NLL before", "NLL after"],
                         [[c.level, c.temperature, f"{c.fitted_on} {c.fitted_split}".strip(), c.ece_before, c.ece_after,
                           c.nll_before, c.nll_after] for c in analysis.calibration])
    note = f"<p>{html.escape(evaluation.fitted.note)}</p>" if evaluation.fitted.note else ""
    thresholds = _table(["level", "threshold (calibrated)", "precision", "coverage"],
                        [[t.level, t.threshold, t.precision, t.coverage] for t in analysis.thresholds.levels])
    slices = analysis.slices
    levels = sorted({s_level for s in slices for s_level in s.accuracy})
    slice_table = _table(["column", "value", "examples"] + [f"acc L{k}" for k in levels] + [f"weighted L{k}" for k in levels],
                         [[s.column, s.value, s.examples] + [s.accuracy[k] for k in levels]
                          + [s.weighted_score[k] for k in levels] for s in slices],
                         ["bad" if s.flagged else "" for s in slices])
    worst_rows = "".join(
        f'<tr><td>{w["level"]}</td><td class="l">{html.escape(w["true"])}</td><td class="l">{html.escape(w["predicted"])}'
        f'</td><td>{w["count"]}</td><td>{w["share_of_true"]:.3f}</td><td class="l">'
        f'{_images(analysis.confusion_images.get((w["level"], w["true_id"], w["predicted_id"]), []))}</td></tr>'
        for w in analysis.worst)
    worst_table = ("<table><tr><th>level</th><th>true</th><th>predicted</th><th>count</th><th>share of true</th>"
                   f"<th>examples</th></tr>{worst_rows}</table>")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in blessing.reasons)
    target = analysis.thresholds.target_precision
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2 class="{'ok' if blessing.blessed else 'bad'}">{verdict}</h2><ul>{reasons}</ul>
<h2>Headline metrics</h2>
<p>Weighted score: each example counts with the business value of its true category
(source: {html.escape(evaluation.weights.source)}). Products of classes folded into <i>other</i> count as errors.
{html.escape(sample, quote=False)}</p>{headline}{_metrics_plot(metrics)}
<h2>Blessing checks</h2>{checks}
<h2>Calibration</h2><p>One softmax temperature per level, fitted on the validation split (lowest negative
log-likelihood); expected calibration error (ECE, {ECE_BINS} bins) and NLL on the test split. A model trained on
the validation split too, or one without a training.json naming the splits it was trained on, is calibrated on
the test split instead, and judged there with each half scaled by the other half's temperature. A level whose
predictions are all right keeps temperature 1: without a mistake the likelihood has no minimum.</p>{note}
{calibration}{_reliability_plot(analysis.calibration)}
<h2>Published thresholds (target precision {target:g})</h2><p>Per level, the lowest calibrated confidence whose
accepted test predictions reach the target precision. Written to thresholds.json and served beside the labels.</p>
{thresholds}
<h2>Precision / coverage</h2>{_coverage_plot(evaluation.curves, metrics[0].confidence_threshold, analysis.thresholds)}
<h2>Tail classes</h2>{_tail_section(analysis)}
<h2>Suspect labels</h2>{_suspect_section(analysis, len(metrics))}
<h2>Confusion matrix</h2>{_confusion_plot(analysis.confusions[confusion_level - 1])}
<h2>Worst confusions</h2>{worst_table}
<h2>Slices</h2><p>Red rows fall below the accuracy floor.</p>{slice_table}
</body></html>
"""
