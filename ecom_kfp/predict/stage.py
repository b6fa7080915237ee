"""The batch-prediction stage: score a products table with a model, batch by batch, streaming.

Products are read from ``products.parquet`` one record batch at a time, their images fetched by a
small thread pool, and scored through the model's serving signature (:class:`Scorer`, the call
evaluate and the MLflow pyfunc make); every batch of predictions is appended to
``predictions.parquet`` as a row group before the next is read, so memory depends on
``--batch-size`` and the number of classes, not on the catalog. What is kept across batches is
bounded: class counts, a few sample products per predicted class and the most confident
disagreements with the catalog (for ``predictions.html``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.labels import OTHER, class_name
from ecom_kfp.contracts.layouts import IngestLayout, PredictionLayout
from ecom_kfp.ingest.sharding import shard_of
from ecom_kfp.predict.config import PredictConfig
from ecom_kfp.predict.drift import LevelDrift, level_drift
from ecom_kfp.predict.html_page import PageSamples, Sample, render
from ecom_kfp.predict.model import ModelFiles, open_model
from ecom_kfp.predict.reasons import STAGE, Reason
from ecom_kfp.predict.scoring import Decisions, Policy, Scorer
from ecom_kfp.report import Timings, check_accounting, write_report

COLUMNS = ["product_id", "title", "image_uri", "category_path"]
IMAGE_THREADS = 8


@dataclass
class PredictReport:
    """``report.json`` of the predict stage (``scored + rejected == input``, checked before writing).

    ``accepted`` counts scored products whose confidence passes the threshold; ``suspect`` those
    whose catalog category the model confidently contradicts (``with_catalog_category`` had one).
    ``predicted_classes`` counts predicted paths, ``predicted_by_level`` the top class of every level
    (what ``drift`` compares with the training counts); ``other_shards`` the rows left to other shards.
    """

    model: str
    model_kind: str
    products_uri: str
    shard_index: int
    num_shards: int
    input: int
    other_shards: int
    scored: int
    rejected: int
    accepted: int
    with_catalog_category: int
    agreeing: int
    suspect: int
    share_accepted: float
    share_suspect: float
    agreement_rate: float
    thresholds: list[float]
    thresholds_source: str
    target_precision: float | None
    rejects_by_reason: dict[str, int]
    products_per_second: float
    drift: dict[str, LevelDrift] = field(default_factory=dict)
    predicted_classes: dict[str, int] = field(default_factory=dict)
    predicted_by_level: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def share(part: int, whole: int) -> float:
    """``part / whole``, 0 for an empty whole."""
    return part / whole if whole else 0.0


def _read_image(image_uri: str | None) -> tuple[bytes | None, Reason | None, str]:
    if not image_uri:
        return None, Reason.NO_IMAGE, "image_uri is null or blank"
    try:
        return uri.read_bytes(image_uri), None, ""
    except FileNotFoundError as err:
        return None, Reason.IMAGE_NOT_FOUND, f"{image_uri}: {err}"
    except Exception as err:  # noqa: BLE001 - any storage error is this product's, recorded as data
        return None, Reason.IMAGE_READ_ERROR, f"{image_uri}: {type(err).__name__}: {err}"


def _batches(products: str, config: PredictConfig, columns: list[str]) -> Iterator[tuple[list[dict], int]]:
    """This shard's product rows (``columns`` of them), ``batch_size`` at a time, with the count of
    rows of other shards."""
    with uri.local_copy(products) as local:
        parquet = pq.ParquetFile(local)
        available = [c for c in columns if c in parquet.schema_arrow.names]
        for record_batch in parquet.iter_batches(batch_size=config.batch_size, columns=available):
            rows = record_batch.to_pylist()
            mine = [r for r in rows if config.num_shards == 1 or shard_of(r["product_id"], config.num_shards)
                    == config.shard_index]
            yield mine, len(rows) - len(mine)


@dataclass
class _Tally:
    """What is kept across batches: counts and the page's bounded samples."""

    page: PageSamples
    input: int = 0
    other_shards: int = 0
    scored: int = 0
    accepted: int = 0
    with_catalog: int = 0
    agreeing: int = 0
    suspect: int = 0
    rejects: list[dict] = field(default_factory=list)
    predicted: list[Counter] = field(default_factory=list)
    paths: Counter = field(default_factory=Counter)


class _Writer:
    """Appends prediction batches to a parquet file as row groups."""

    def __init__(self, path: str) -> None:
        self.writer = pq.ParquetWriter(path, tables.PREDICTIONS)

    def write(self, rows: list[dict]) -> None:
        if rows:
            self.writer.write_table(tables.from_rows(rows, tables.PREDICTIONS))

    def close(self) -> None:
        self.writer.close()


def _confidently_contradicts(scorer: Scorer, decisions: Decisions, row: int, catalog: list[str]) -> bool:
    """Whether, at some level of the catalog's path, the model's top class is another class it knows,
    with a probability that passes that level's threshold.

    Every level counts, not only the predicted one: a product filed in the wrong department is
    contradicted most surely at level 1, where the model is confident even when its leaf is not.
    """
    for level in range(1, min(scorer.num_levels, len(catalog)) + 1):
        vocabulary = scorer.vocabularies[level - 1]
        given = class_name(catalog, level)
        top = vocabulary.classes[int(decisions.top_index[level - 1][row, 0])]
        if (top not in (given, OTHER) and vocabulary.contains(given)
                and decisions.top_probability[level - 1][row, 0] >= scorer.policy.thresholds[level - 1]):
            return True
    return False


def _catalog_columns(scorer: Scorer, decisions: Decisions, row: int, catalog: list[str] | None) -> dict:
    """Agreement with the catalog category at the predicted level (or the catalog's depth, if shallower)."""
    if not catalog or decisions.predicted_level[row] == 0:
        return {"catalog_path": catalog or None, "agrees_with_catalog": None, "catalog_probability": None,
                "suspect_label": None}
    level = min(int(decisions.predicted_level[row]), len(catalog))
    vocabulary = scorer.vocabularies[level - 1]
    given = class_name(catalog, level)
    return {"catalog_path": catalog,
            "agrees_with_catalog": vocabulary.classes[int(decisions.top_index[level - 1][row, 0])] == given,
            "catalog_probability": float(decisions.probabilities[level - 1][row, vocabulary.lookup(given)])
            if vocabulary.contains(given) else None,
            "suspect_label": _confidently_contradicts(scorer, decisions, row, catalog)}


def _prediction_rows(scorer: Scorer, decisions: Decisions, products: list[dict]) -> list[dict]:
    rows = []
    for i, product in enumerate(products):
        row = {
            "product_id": product["product_id"],
            "top_classes": [scorer.class_names(k + 1, t[i]) for k, t in enumerate(decisions.top_index)],
            "top_probabilities": [p[i].tolist() for p in decisions.top_probability],
            "predicted_path": scorer.predicted_path(decisions, i),
            "predicted_level": int(decisions.predicted_level[i]),
            "confidence": float(decisions.confidence[i]),
            "threshold": float(decisions.threshold[i]),
            "accepted": bool(decisions.accepted[i]),
            "accepted_level": int(decisions.accepted_level[i]),
        }
        row.update(_catalog_columns(scorer, decisions, i, product.get("category_path")))
        rows.append(row)
    return rows


def _tally(tally: _Tally, rows: list[dict], products: list[dict]) -> None:
    for row, product in zip(rows, products, strict=True):
        tally.scored += 1
        tally.accepted += row["accepted"]
        for level, classes in enumerate(row["top_classes"]):
            tally.predicted[level][classes[0]] += 1
        sample = Sample(row["product_id"], product.get("title") or "", product.get("image_uri"),
                        " > ".join(row["predicted_path"]) or "other", row["confidence"],
                        " > ".join(row["catalog_path"] or []))
        tally.paths[sample.predicted] += 1
        tally.page.keep_sample(sample)
        if row["agrees_with_catalog"] is None:
            continue
        tally.with_catalog += 1
        tally.agreeing += row["agrees_with_catalog"]
        tally.suspect += bool(row["suspect_label"])
        if not row["agrees_with_catalog"]:
            tally.page.keep_disagreement(sample)


def _process(batch: list[dict], scorer: Scorer, pool: ThreadPoolExecutor,
             tally: _Tally) -> tuple[list[dict], list[dict]]:
    """Score one batch: its prediction rows and the products they are of, in the same order, with its
    unscorable products added to the tally's rejects."""
    fetched = list(pool.map(_read_image, [p.get("image_uri") for p in batch]))
    ready = []
    for product, (data, reason, detail) in zip(batch, fetched):
        if reason is None:
            ready.append((product, data))
        else:
            tally.rejects.append(tables.Reject(product["product_id"], reason, detail).row(STAGE))
    if not ready:
        return [], []
    probabilities, undecodable = scorer.probabilities_of_decodable([d for _, d in ready],
                                                                   [scorer.model_title(p.get("title") or "", p.get("source"))
                                                                    for p, _ in ready])
    for i in undecodable:
        tally.rejects.append(tables.Reject(ready[i][0]["product_id"], Reason.IMAGE_UNDECODABLE,
                                           f"{ready[i][0].get('image_uri')}: the serving signature cannot decode "
                                           "it").row(STAGE))
    if probabilities is None:
        return [], []
    scored = [p for i, (p, _) in enumerate(ready) if i not in undecodable]
    return _prediction_rows(scorer, scorer.decide(probabilities), scored), scored


def drift(files: ModelFiles, predicted_by_level: dict[str, dict[str, int]]) -> dict[str, LevelDrift]:
    """Per level, the shift of the predicted classes against the model's training counts."""
    trained = files.train_counts()
    found = {}
    for key, predicted in predicted_by_level.items():
        shift = level_drift(int(key.split("_")[1]), Counter(predicted), trained.get(key, {}))
        if shift is not None:
            found[key] = shift
    return found


def run(config: PredictConfig) -> PredictReport:
    """Score ``config.products_uri`` with ``config.model_uri``; see the module docstring.

    Raises:
        ConfigError: a bad setting (the message names the flag).
        FileNotFoundError: the products table or the model is missing (the message names the flag).
        DigestError: a train output's files differ from its ``digests.json`` (nothing was loaded).
        ValueError: the model's outputs and label files disagree, or thresholds cannot be chosen.
    """
    from ecom_kfp.contracts.serving import load_signature

    config.validate()
    ingest = IngestLayout(config.products_uri)
    if not uri.exists(ingest.products):
        raise FileNotFoundError(f"--products {config.products_uri}: no {ingest.products}")
    out = PredictionLayout(config.out_uri)
    timings = Timings()
    start = time.perf_counter()
    with open_model(config.model_uri, config.registry_uri) as files:
        with timings.phase("load_model"):
            vocabularies = files.vocabularies()
            policy = Policy.choose(files.thresholds(), len(vocabularies), config.target_precision,
                                   config.fallback_threshold)
            scorer = Scorer(load_signature(files.saved_model), vocabularies, policy, config.top_k, files.title_attributes())
        tally = _Tally(PageSamples(config.html_samples, config.html_classes), predicted=[Counter() for _ in vocabularies])
        with uri.local_output_dir(config.out_uri) as local_out, ThreadPoolExecutor(IMAGE_THREADS) as pool:
            writer = _Writer(PredictionLayout(local_out).predictions)
            try:
                with timings.phase("score"):
                    # The catalog rows only when the model reads attributes from them: they are the
                    # largest column.
                    columns = COLUMNS + (["source"] if scorer.title_attributes else [])
                    for batch, others in tqdm(_batches(ingest.products, config, columns), desc="predict", unit="batch",
                                              disable=not config.progress, leave=False):
                        tally.input += len(batch)
                        tally.other_shards += others
                        rows, scored = _process(batch, scorer, pool, tally)
                        writer.write(rows)
                        _tally(tally, rows, scored)
            finally:
                writer.close()
            pq.write_table(pa.Table.from_pylist(tally.rejects, schema=tables.REJECTS)
                           if tally.rejects else tables.empty(tables.REJECTS), PredictionLayout(local_out).rejects)
        check_accounting(STAGE, tally.input, scored=tally.scored, rejected=len(tally.rejects))
        scored_seconds = timings.seconds["score"]
        report = PredictReport(
            model=files.description, model_kind=files.kind, products_uri=config.products_uri,
            shard_index=config.shard_index, num_shards=config.num_shards, input=tally.input,
            other_shards=tally.other_shards, scored=tally.scored,
            rejected=len(tally.rejects), accepted=tally.accepted, with_catalog_category=tally.with_catalog,
            agreeing=tally.agreeing, suspect=tally.suspect,
            share_accepted=share(tally.accepted, tally.scored), share_suspect=share(tally.suspect, tally.scored),
            agreement_rate=share(tally.agreeing, tally.with_catalog),
            thresholds=list(policy.thresholds), thresholds_source=policy.source,
            target_precision=policy.target_precision,
            rejects_by_reason=dict(Counter(r["reason"] for r in tally.rejects)),
            products_per_second=tally.input / scored_seconds if scored_seconds else 0.0,
            predicted_classes=dict(tally.paths.most_common()),
            predicted_by_level={f"level_{k}": dict(c.most_common()) for k, c in enumerate(tally.predicted, start=1)})
        report.drift = drift(files, report.predicted_by_level)
    with timings.phase("html"):
        page = tally.page.restricted(report.predicted_classes).with_thumbnails()
        uri.write_json(out.samples, page.to_json())
        uri.write_text(out.html, render(report, page))
    report.timings = {**timings.seconds, "total": time.perf_counter() - start}
    write_report(report, config.out_uri)
    return report
