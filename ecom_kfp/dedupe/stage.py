"""``run(config)``: the dedupe stage from an ingest output to a ``DedupeLayout``.

Flow: read the products table, hash every image once (parallel processes), gather each product's
evidence (keys, hashes, labels), let the rules find removal candidates and leak edges
(:mod:`~ecom_kfp.dedupe.matching`), form removal groups around kept products and leak groups
(:mod:`~ecom_kfp.dedupe.grouping`), write the kept products (with ``group_id``, ``group_size``,
``split_group``, ``label_conflict``), the duplicates, the rejects, ``samples.html`` and
``report.json``. Every input product ends up kept, a duplicate, or a reject (asserted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import DedupeLayout, IngestLayout
from ecom_kfp.contracts.tables import (
    DEDUPED_PRODUCTS,
    DUPLICATES,
    PRODUCTS,
    REJECTS,
    column_key,
    conform,
    from_rows,
    source_columns,
)
from ecom_kfp.dedupe import grid_hash, rules, samples
from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.dedupe.embedding import EmbeddingModel, embed_images, load_embedding_model
from ecom_kfp.dedupe.grouping import Groups, build_groups, priority_rank
from ecom_kfp.dedupe.image_hashes import ImageHashes, ImageJob, hash_images, read_first
from ecom_kfp.dedupe.matching import Evidence, Matches, match
from ecom_kfp.report import Timings, check_accounting, write_report

log = logging.getLogger(__name__)

STAGE = "dedupe"
LARGEST_GROUPS_REPORTED = 10
#: Label conflicts listed one by one in ``report.json`` (all are counted).
CONFLICTS_REPORTED = 200
#: Metadata fields counted for the "most complete metadata" part of the kept-product policy.
COMPLETENESS_FIELDS = ("title", "brand", "price", "category_path", "business_value")
#: Rows turned into Python objects at a time (image jobs, catalog source rows). The stage keeps
#: per-product data in arrays only, so its memory grows by bytes, not Python objects, per product.
ROW_BATCH = 1024


@dataclass
class RuleReport:
    """What one rule found, and what its matches did."""

    enabled: bool
    role: str  # "removal and leak groups" or "leak groups"
    matched_products: int = 0  # products with at least one match by this rule
    dropped: int = 0  # removed products whose direct match with the kept product is this rule
    vetoed_pairs: int = 0  # matched pairs not removed because the products' labels disagree
    too_common: int = 0  # products whose key is shared too widely to be evidence (key rules)


@dataclass
class DedupeReport:
    """``report.json`` of the dedupe stage."""

    input: int
    kept: int
    duplicates: int
    rejected: int
    duplicate_groups: int
    split_groups: int  # leak groups of two or more products
    largest_split_group: int
    label_conflicts: int  # products marked label_conflict
    conflicts: list[dict]  # byte-identical images whose products' labels disagree
    near_threshold: int
    near_colour_tolerance: int
    near_verify_bits: int
    title_near_threshold: int
    title_colour_tolerance: int
    variant_columns: list[str]
    embedding_model: str
    embedding_threshold: float
    rules: dict[str, RuleReport]
    rejects_by_reason: dict[str, int]
    largest_groups: list[dict]
    seconds: dict[str, float]
    images_per_second: float
    message: str
    outputs: dict[str, str] = field(default_factory=dict)
    stage: str = STAGE


def image_jobs(table: pa.Table, source: IngestLayout) -> Iterator[ImageJob]:
    """Where to read each product's image: its ``image_uri`` (relative ones resolve against the
    ingest root), then the content-addressed copy ``images/<sha[:2]>/<sha>.jpg`` under that root,
    which survives the ingest output being moved (e.g. between pipeline pods).

    Made lazily, :data:`ROW_BATCH` rows at a time: a job per product held at once would be the
    stage's largest cost per product.
    """
    for batch in table.select(["image_uri", "image_sha256"]).to_batches(max_chunksize=ROW_BATCH):
        for image_uri, sha in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            candidates = []
            if image_uri:
                absolute = uri.is_gcs(image_uri) or image_uri.startswith("/")
                candidates.append(image_uri if absolute else uri.join(source.root, image_uri))
            if sha and source.image(sha) not in candidates:
                candidates.append(source.image(sha))
            yield ImageJob(candidates=tuple(candidates), expected_sha256=sha or None)


def completeness(table: pa.Table) -> np.ndarray:
    """Number of non-empty metadata fields per product."""
    score = np.zeros(table.num_rows, dtype=np.int64)
    for name in COMPLETENESS_FIELDS:
        column = table[name]
        if pa.types.is_string(column.type):
            present = pc.greater(pc.utf8_length(column), 0)
        elif pa.types.is_list(column.type):
            present = pc.greater(pc.list_value_length(column), 0)
        else:
            present = pc.is_valid(column)
        score += pc.fill_null(present, False).to_numpy(zero_copy_only=False).astype(np.int64)
    return score


def label_keys(table: pa.Table, variant_columns: list[str]) -> np.ndarray:
    """``(n, 1 + columns)`` keys: the category path, then each variant column of the catalog row."""
    category = pc.binary_join(table["category_path"], ">")
    names = list(dict.fromkeys(column_key(c) for c in variant_columns))
    chunks: list[list[pa.Array]] = [[] for _ in names]
    # The source rows are parsed a batch at a time, and each batch's values kept as Arrow strings.
    for batch in table.select(["source"]).to_batches(max_chunksize=ROW_BATCH):
        values: list[list[str | None]] = [[] for _ in names]
        for text in batch.column(0).to_pylist():
            found = source_columns(text)
            for column, name in zip(values, names):
                value = found.get(name)
                column.append(None if value is None else str(value).strip().lower())
        for column_chunks, column in zip(chunks, values):
            column_chunks.append(pa.array(column, pa.string()))
    keys = [rules.equal_value_ids(category)] + [rules.equal_value_ids(pa.chunked_array(c, pa.string())) for c in chunks]
    return np.stack(keys, axis=1) if len(table) else np.zeros((0, len(keys)), dtype=np.int64)


def evidence_of(table: pa.Table, hashes: ImageHashes, variant_columns: list[str]) -> Evidence:
    """The rules' view of the readable products."""
    detailed = grid_hash.has_detail(hashes.colour)
    grid_ids = np.unique(hashes.grid, return_inverse=True)[1].ravel().astype(np.int64)
    return Evidence(sha256=rules.equal_value_ids(pa.array(hashes.sha256, pa.string())),
                    title=rules.equal_value_ids(table["title_normalized"]),
                    grid=np.where(detailed, grid_ids, -1), phash=hashes.phash, phash256=hashes.phash256,
                    thumbnail=hashes.thumbnail, detailed=detailed, labels=label_keys(table, variant_columns))


def embedding_edges(config: DedupeConfig, readable: pa.Table, source: IngestLayout, model: EmbeddingModel | None,
                    ) -> rules.RuleEdges | None:
    """The embedding rule's edges, or None when no model is given."""
    if model is None or not readable.num_rows:
        return None
    vectors = embed_images(image_jobs(readable, source), model, batch_size=config.embedding_batch_size,
                           progress=config.progress)
    return rules.embedding_edges(rules.EmbeddingRule(vectors=vectors, threshold=config.embedding_threshold),
                                 progress=config.progress)


def rule_reports(config: DedupeConfig, matches: Matches, groups: Groups) -> dict[str, RuleReport]:
    """Per rule: its role, matched products, removals it explains, vetoed pairs."""
    enabled = {rules.SHA256: config.sha256_rule, rules.PHASH_TITLE: config.phash_title_rule,
               rules.PHASH: config.phash_rule, rules.EMBEDDING: bool(config.embedding_model),
               rules.GRID: config.grid_rule, rules.TITLE: config.title_rule}
    removes = {rules.SHA256, rules.PHASH_TITLE} | ({rules.PHASH, rules.EMBEDDING} if config.near_removes else set())
    out = {name: RuleReport(enabled=on, role="removal and leak groups" if name in removes else "leak groups")
           for name, on in enabled.items()}
    for name, report in out.items():
        edges = [e for e in matches.leak if e.rule == name]
        if edges:
            report.matched_products = len(np.unique(np.concatenate([np.concatenate([e.left, e.right])
                                                                    for e in edges])))
        report.dropped = int(np.sum(groups.rule == name))
        report.vetoed_pairs = matches.vetoed.get(name, 0)
        report.too_common = matches.shared_keys.get(name, 0)
    return out


def rows_of(table: pa.Table, rows: np.ndarray, columns: list[str]) -> dict[str, list]:
    """Python values of a few ``rows`` of some ``columns`` (only the rows a report shows become objects)."""
    taken = table.select(columns).take(pa.array(rows, pa.int64()))
    return {name: taken[name].to_pylist() for name in columns}


def reported_conflicts(matches: Matches) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(left, right)`` of the byte-identical pairs reported one by one (:data:`CONFLICTS_REPORTED`)."""
    left, right = matches.conflicts
    return left[:CONFLICTS_REPORTED], right[:CONFLICTS_REPORTED]


def conflict_list(matches: Matches, table: pa.Table, field_names: list[str]) -> list[dict]:
    """The first :data:`CONFLICTS_REPORTED` byte-identical pairs whose labels disagree."""
    left, right = reported_conflicts(matches)
    shown = rows_of(table, np.concatenate([left, right]), ["product_id", "title", "category_path"])
    ids, titles, paths = shown["product_id"], shown["title"], shown["category_path"]
    out = []
    for a, differs in enumerate(matches.conflict_fields[:len(left)]):
        b = len(left) + a  # the right product's place in ``shown``
        out.append({"product_ids": [ids[a], ids[b]], "titles": [titles[a], titles[b]],
                    "category_paths": [paths[a], paths[b]],
                    "differs": [name for name, d in zip(field_names, differs) if d],
                    "label_conflict": bool(differs[0])})
    return out


def rejects_table(table: pa.Table, hashes: ImageHashes) -> pa.Table:
    """One row per unreadable image."""
    bad = np.nonzero(~hashes.ok)[0]
    ids = rows_of(table, bad, ["product_id"])["product_id"]
    return from_rows(({"product_id": pid, "stage": STAGE, "reason": hashes.reason[i],
                       "detail": hashes.detail[i]} for pid, i in zip(ids, bad)), REJECTS)


def duplicates_table(product_ids: pa.Array, groups: Groups, dropped_rows: np.ndarray) -> pa.Table:
    """One row per removed product, with the kept product of its group."""
    kept_ids = product_ids.take(pa.array(groups.kept_index[dropped_rows], pa.int64()))
    return pa.Table.from_arrays([product_ids.take(pa.array(dropped_rows, pa.int64())), kept_ids,
                                 pa.array(groups.rule[dropped_rows], pa.string()),
                                 pa.array(groups.distance[dropped_rows], pa.float64()), kept_ids], schema=DUPLICATES)


def largest_groups(groups: Groups, table: pa.Table) -> list[dict]:
    """The biggest removal groups with their kept product and the rules that removed their members."""
    kept = np.nonzero(groups.kept & (groups.group_size > 1))[0]
    kept_ids = np.array(rows_of(table, kept, ["product_id"])["product_id"], dtype=object)
    kept = kept[np.lexsort((kept_ids, -groups.group_size[kept]))][:LARGEST_GROUPS_REPORTED]
    shown = rows_of(table, kept, ["product_id", "title"])
    out = []
    for k, product_id, title in zip(kept, shown["product_id"], shown["title"]):
        members = np.nonzero(groups.kept_index == k)[0]
        out.append({"group_id": str(product_id), "size": int(groups.group_size[k]), "kept_title": title,
                    "rules": sorted({str(r) for r in groups.rule[members] if r is not None})})
    return out


def write_samples(config: DedupeConfig, out: DedupeLayout, table: pa.Table, source: IngestLayout,
                  groups: Groups, matches: Matches, conflicts: list[dict], summary: str) -> None:
    """Render ``samples.html``: random removals and the reported conflicts, re-reading only their images."""
    removed = np.nonzero(~groups.kept)[0]
    chosen = np.sort(np.random.default_rng(config.sample_seed).choice(
        removed, min(config.sample_removals, len(removed)), replace=False))
    left, right = reported_conflicts(matches)
    rows = np.unique(np.concatenate([chosen, groups.kept_index[chosen], left, right]).astype(np.int64))
    shown = rows_of(table, rows, ["product_id", "title"])
    jobs = list(image_jobs(table.take(pa.array(rows, pa.int64())), source))
    position = {int(row): k for k, row in enumerate(rows)}

    def product(i: int) -> samples.Shown:
        k = position[i]
        try:
            image = read_first(jobs[k].candidates)
        except FileNotFoundError:
            image = None
        return samples.Shown(product_id=str(shown["product_id"][k]), title=shown["title"][k] or "", image=image)

    pairs = [samples.Removal(kept=product(int(groups.kept_index[i])), removed=product(int(i)),
                             rule=str(groups.rule[i]), distance=float(groups.distance[i])) for i in chosen]
    shown_conflicts = [samples.Conflict(products=[product(int(a)), product(int(b))], differs=differs)
                       for a, b, differs in zip(left, right, (c["differs"] for c in conflicts))]
    page = samples.render(pairs, len(removed), shown_conflicts, summary)
    uri.write_bytes(out.samples_html, page.encode(), content_type="text/html")


def run(config: DedupeConfig) -> DedupeReport:
    """Run the stage and write its outputs.

    Raises:
        ValueError: bad configuration (the message names the flag).
        FileNotFoundError: ``--products`` holds no ``products.parquet``, or nothing is at
            ``--embedding-model``.
    """
    config.validate()
    timings = Timings()
    source, out = IngestLayout(config.products_uri), DedupeLayout(config.out_uri)
    with timings.phase("read"):
        if not uri.exists(source.products):
            raise FileNotFoundError(f"--products={config.products_uri!r}: no {source.products} "
                                    "(expected an ingest output directory)")
        table = conform(uri.read_parquet(source.products), PRODUCTS)
        # Loaded before hashing so a bad --embedding-model fails fast.
        model = load_embedding_model(config.embedding_model, config.embedding_model_sha256) \
            if config.embedding_model else None
    with timings.phase("hash"):
        hashes = hash_images(image_jobs(table, source), workers=config.workers, chunk_size=config.chunk_size,
                             grid_cells=config.grid_cells, progress=config.progress, total=table.num_rows)
    n_input, ok = table.num_rows, hashes.ok
    rejects = rejects_table(table, hashes)
    if not ok.all():  # the readable rows replace the catalog: holding both would hold it twice
        table = table.filter(pa.array(ok))
        hashes = ImageHashes(**{name: getattr(hashes, name)[ok] for name in ImageHashes.__dataclass_fields__})
    readable, good = table, hashes
    product_ids = readable["product_id"].combine_chunks()
    with timings.phase("match"):
        matches = match(config, evidence_of(readable, good, config.variant_columns),
                        embedding=embedding_edges(config, readable, source, model))
    with timings.phase("group"):
        groups = build_groups(matches, priority_rank(good.width * good.height, completeness(readable), product_ids))
    kept_rows = np.nonzero(groups.kept)[0]
    dropped_rows = np.nonzero(~groups.kept)[0]
    check_accounting(STAGE, n_input, kept=len(kept_rows), duplicates=len(dropped_rows), rejected=int((~ok).sum()))
    conflicts = conflict_list(matches, readable, ["category_path", *config.variant_columns])
    with timings.phase("write"):
        kept_table = readable.take(pa.array(kept_rows, pa.int64()))
        for name, values, kind in (("group_id", product_ids.take(pa.array(kept_rows, pa.int64())), pa.string()),
                                   ("group_size", groups.group_size[kept_rows], pa.int32()),
                                   ("split_group", product_ids.take(pa.array(groups.split_index[kept_rows], pa.int64())),
                                    pa.string()),
                                   ("label_conflict", groups.label_conflict[kept_rows], pa.bool_())):
            kept_table = kept_table.append_column(name, pa.array(values, kind))
        uri.makedirs(config.out_uri)
        uri.write_parquet(conform(kept_table, DEDUPED_PRODUCTS), out.products)
        uri.write_parquet(duplicates_table(product_ids, groups, dropped_rows), out.duplicates)
        uri.write_parquet(rejects, out.rejects)
        n_groups = int(np.sum(groups.kept & (groups.group_size > 1)))
        n_split = int(np.sum((groups.split_index == np.arange(len(product_ids))) & (groups.split_size > 1)))
        message = (f"{n_input} products: {len(kept_rows)} kept, {len(dropped_rows)} duplicates "
                   f"in {n_groups} groups, {rejects.num_rows} rejected; {n_split} leak groups, "
                   f"{int(groups.label_conflict.sum())} label conflicts"
                   if n_input else "empty input: no products, empty outputs written")
        write_samples(config, out, readable, source, groups, matches, conflicts, message)
    reasons = rejects["reason"].to_pylist()
    hash_seconds = timings.seconds.get("hash", 0.0)
    report = DedupeReport(
        input=n_input, kept=len(kept_rows), duplicates=len(dropped_rows), rejected=rejects.num_rows,
        duplicate_groups=n_groups, split_groups=n_split,
        largest_split_group=int(groups.split_size.max()) if len(product_ids) else 0,
        label_conflicts=int(groups.label_conflict.sum()), conflicts=conflicts,
        near_threshold=config.near_threshold,
        near_colour_tolerance=config.near_colour_tolerance, near_verify_bits=config.near_verify_bits,
        title_near_threshold=config.title_near_threshold, title_colour_tolerance=config.title_colour_tolerance,
        variant_columns=list(config.variant_columns),
        embedding_model=config.embedding_model, embedding_threshold=config.embedding_threshold,
        rules=rule_reports(config, matches, groups),
        rejects_by_reason={r: reasons.count(r) for r in sorted(set(reasons))},
        largest_groups=largest_groups(groups, readable),
        seconds=dict(timings.seconds),
        images_per_second=n_input / hash_seconds if hash_seconds > 0 else 0.0,
        message=message,
        outputs={"products": out.products, "duplicates": out.duplicates, "rejects": out.rejects,
                 "samples": out.samples_html, "report": out.report},
    )
    write_report(report, config.out_uri)
    log.info(message)
    return report
