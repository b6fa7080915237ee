"""Merge the outputs of prediction shards into one prediction layout (the gather after a fan-out).

Predictions and rejects are concatenated row group by row group (memory stays at one row group),
counts summed, shares and the drift against the training counts recomputed over all shards. The
page shows the products the shards chose, merged (their ``samples.json``: the most confident
disagreements over all shards, samples of every class), and links to each shard's own page.
``products_per_second`` is the sum of the shards' rates: shards run side by side.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pyarrow.parquet as pq

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.layouts import PredictionLayout
from ecom_kfp.predict.html_page import PageSamples, render
from ecom_kfp.predict.model import open_model
from ecom_kfp.predict.stage import PredictReport, drift, share
from ecom_kfp.report import check_accounting, write_report

SUMMED = ("input", "scored", "rejected", "accepted", "with_catalog_category", "agreeing", "suspect",
          "products_per_second")


def _concat(sources: list[str], target: str, schema) -> None:
    writer = None
    try:
        for source in sources:
            with uri.local_copy(source) as local:
                parquet = pq.ParquetFile(local)
                for group in range(parquet.num_row_groups):
                    writer = writer or pq.ParquetWriter(target, schema)
                    writer.write_table(parquet.read_row_group(group).cast(schema))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pq.write_table(tables.empty(schema), target)


def _page_samples(layout: PredictionLayout) -> PageSamples:
    try:
        return PageSamples.from_json(uri.read_json(layout.samples))
    except ValueError as err:
        raise ValueError(f"prediction shard {layout.root}: {layout.samples}: {err}") from err


def merge_predictions(shard_uris: list[str], out_uri: str, model_uri: str, registry_uri: str = "") -> PredictReport:
    """Merge prediction outputs ``shard_uris`` (all shards of one run) into ``out_uri``.

    Raises:
        ValueError: no shards, shards of different models or shard counts, or a shard's
            ``samples.json`` that is not one.
        FileNotFoundError: a shard lacks its report (it did not finish) or its ``samples.json``.
    """
    if not shard_uris:
        raise ValueError("no prediction shards to merge")
    layouts = [PredictionLayout(s) for s in shard_uris]
    for layout in layouts:
        if not uri.exists(layout.report):
            raise FileNotFoundError(f"prediction shard {layout.root} has no {layout.report}: did it finish?")
    reports = [uri.read_json(layout.report) for layout in layouts]
    if len({(r["model"], r["num_shards"]) for r in reports}) != 1:
        raise ValueError(f"shards of different models or shard counts: {sorted({r['model'] for r in reports})}")
    out = PredictionLayout(out_uri)
    with uri.local_output_dir(out_uri) as local:
        merged_local = PredictionLayout(local)
        _concat([layout.predictions for layout in layouts], merged_local.predictions, tables.PREDICTIONS)
        _concat([layout.rejects for layout in layouts], merged_local.rejects, tables.REJECTS)
    first = reports[0]
    sums = {name: sum(r[name] for r in reports) for name in SUMMED}
    by_level: dict[str, Counter] = {}
    for r in reports:
        for key, counts in r["predicted_by_level"].items():
            by_level.setdefault(key, Counter()).update(counts)
    report = PredictReport(
        **{f.name: first[f.name] for f in dataclasses.fields(PredictReport)
           if f.name in ("model", "model_kind", "products_uri", "thresholds", "thresholds_source", "target_precision")},
        shard_index=0, num_shards=first["num_shards"], other_shards=0, **sums,
        share_accepted=share(sums["accepted"], sums["scored"]), share_suspect=share(sums["suspect"], sums["scored"]),
        agreement_rate=share(sums["agreeing"], sums["with_catalog_category"]),
        rejects_by_reason=dict(sum((Counter(r["rejects_by_reason"]) for r in reports), Counter())),
        predicted_classes=dict(sum((Counter(r["predicted_classes"]) for r in reports), Counter()).most_common()),
        predicted_by_level={k: dict(c.most_common()) for k, c in sorted(by_level.items())})
    check_accounting("predict merge", report.input, scored=report.scored, rejected=report.rejected)
    with open_model(model_uri, registry_uri) as files:
        report.drift = drift(files, report.predicted_by_level)
    page = PageSamples.merged([_page_samples(layout) for layout in layouts]).restricted(report.predicted_classes)
    uri.write_json(out.samples, page.to_json())
    uri.write_text(out.html, render(report, page, shard_pages=[layout.html for layout in layouts]))
    write_report(report, out_uri)
    return report
