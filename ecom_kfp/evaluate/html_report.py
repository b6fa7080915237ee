"""``report.html``: one self-contained page (plots as base64 PNG, example images inline) for the
Kubeflow UI's HTML viewer, which shows a single file and cannot fetch neighbours."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np

from ecom_kfp.evaluate.confusion import ConfusionTable
from ecom_kfp.evaluate.gate import Blessing
from ecom_kfp.evaluate.metrics import CoveragePoint, LevelMetrics
from ecom_kfp.evaluate.slices import SliceMetrics

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


def _coverage_plot(curves: dict[int, list[CoveragePoint]], threshold: float) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5))
    for level, curve in curves.items():
        line, = axis.plot([p.coverage for p in curve], [np.nan if p.precision is None else p.precision for p in curve],
                          label=f"level {level}")
        at = [p for p in curve if p.threshold >= threshold]
        if at and at[0].precision is not None:
            axis.plot([at[0].coverage], [at[0].precision], "o", color=line.get_color())
    axis.set_xlabel("coverage (share of products accepted)")
    axis.set_ylabel("precision of accepted")
    axis.set_xlim(0, 1.02)
    axis.set_title(f"Precision vs coverage over softmax thresholds (dot: threshold {threshold:g})")
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


def render(*, title: str, metrics: Sequence[LevelMetrics], curves: dict[int, list[CoveragePoint]],
           confusion: ConfusionTable, slices: Sequence[SliceMetrics], worst: Sequence[dict],
           confusion_images: dict[tuple[int, int, int], list[bytes]], blessing: Blessing,
           business_value_source: str) -> str:
    """The whole page."""
    verdict = "BLESSED" if blessing.blessed else "NOT BLESSED"
    headline = _table(
        ["level", "examples", "accuracy", "weighted score", "top-k", "k", "macro F1", "weighted F1", "log loss",
         "precision @ threshold", "coverage @ threshold", "threshold for target precision", "coverage @ target"],
        [[m.level, m.examples, m.accuracy, m.weighted_score, m.top_k_accuracy, m.k, m.macro_f1, m.weighted_f1,
          m.log_loss, m.precision_at_threshold, m.coverage_at_threshold, m.threshold_for_target_precision,
          m.coverage_at_target_precision] for m in metrics])
    checks = _table(["check", "kind", "value", "threshold", "baseline", "passed"],
                    [[c.name, c.kind, c.value, c.threshold, c.baseline_value, str(c.passed)] for c in blessing.checks],
                    ["ok" if c.passed else "bad" for c in blessing.checks])
    levels = sorted({s_level for s in slices for s_level in s.accuracy})
    slice_table = _table(["column", "value", "examples"] + [f"acc L{k}" for k in levels] + [f"weighted L{k}" for k in levels],
                         [[s.column, s.value, s.examples] + [s.accuracy[k] for k in levels]
                          + [s.weighted_score[k] for k in levels] for s in slices],
                         ["bad" if s.flagged else "" for s in slices])
    worst_rows = "".join(
        f'<tr><td>{w["level"]}</td><td class="l">{html.escape(w["true"])}</td><td class="l">{html.escape(w["predicted"])}'
        f'</td><td>{w["count"]}</td><td>{w["share_of_true"]:.3f}</td><td class="l">'
        f'{_images(confusion_images.get((w["level"], w["true_id"], w["predicted_id"]), []))}</td></tr>' for w in worst)
    worst_table = ("<table><tr><th>level</th><th>true</th><th>predicted</th><th>count</th><th>share of true</th>"
                   f"<th>examples</th></tr>{worst_rows}</table>")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in blessing.reasons)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2 class="{'ok' if blessing.blessed else 'bad'}">{verdict}</h2><ul>{reasons}</ul>
<h2>Headline metrics</h2>
<p>Weighted score: each example counts with the business value of its true category
(source: {html.escape(business_value_source)}).</p>{headline}{_metrics_plot(metrics)}
<h2>Blessing checks</h2>{checks}
<h2>Precision / coverage</h2>{_coverage_plot(curves, metrics[0].confidence_threshold)}
<h2>Confusion matrix</h2>{_confusion_plot(confusion)}
<h2>Worst confusions</h2>{worst_table}
<h2>Slices</h2><p>Red rows fall below the accuracy floor.</p>{slice_table}
</body></html>
"""
