"""``run(config)``: the dedupe stage from an ingest output to a ``DedupeLayout``.

Flow: read the products table, hash every image once (parallel processes), let each enabled rule
emit match edges, merge them with union-find, keep one product per group, write the kept
products (with ``group_id``/``group_size``), the duplicates, the rejects, ``samples.html`` and
``report.json``. Every input product ends up kept, a duplicate, or a reject (asserted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import DedupeLayout, IngestLayout
from ecom_kfp.contracts.tables import DEDUPED_PRODUCTS, DUPLICATES, PRODUCTS, REJECTS, conform, from_rows
from ecom_kfp.dedupe import grid_hash, rules, samples
from ecom_kfp.dedupe.embedding import EmbeddingModel, embed_images, load_embedding_model
from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.dedupe.grouping import Groups, build_groups, union_groups
from ecom_kfp.dedupe.image_hashes import ImageHashes, ImageJob, hash_images, read_first
from ecom_kfp.report import Timings, check_accounting, write_report

log = logging.getLogger(__name__)

STAGE = "dedupe"
LARGEST_GROUPS_REPORTED = 10
#: Metadata fields counted for the "most complete metadata" part of the kept-product policy.
COMPLETENESS_FIELDS = ("title", "brand", "price", "category_path", "business_value")


@dataclass
class RuleReport:
    """What one rule found on its own, and how many dropped products it explains."""

    enabled: bool
    matched_products: int = 0  # products with at least one match by this rule
    groups: int = 0  # groups this rule alone would form (size >= 2)
    dropped: int = 0  # dropped products whose match with the kept product is this rule


@dataclass
class DedupeReport:
    """``report.json`` of the dedupe stage."""

    input: int
    kept: int
    duplicates: int
    rejected: int
    duplicate_groups: int
    near_threshold: int
    near_colour_tolerance: int
    near_verify_bits: int
    embedding_model: str
    embedding_threshold: float
    rules: dict[str, RuleReport]
    dropped_transitive: int
    rejects_by_reason: dict[str, int]
    largest_groups: list[dict]
    seconds: dict[str, float]
    images_per_second: float
    message: str
    outputs: dict[str, str] = field(default_factory=dict)
    stage: str = STAGE


def image_jobs(table: pa.Table, source: IngestLayout) -> list[ImageJob]:
    """Where to read each product's image: its ``image_uri`` (relative ones resolve against the
    ingest root), then the content-addressed copy ``images/<sha[:2]>/<sha>.jpg`` under that root,
    which survives the ingest output being moved (e.g. between pipeline pods)."""
    jobs = []
    for image_uri, sha in zip(table["image_uri"].to_pylist(), table["image_sha256"].to_pylist()):
        candidates = []
        if image_uri:
            absolute = uri.is_gcs(image_uri) or image_uri.startswith("/")
            candidates.append(image_uri if absolute else uri.join(source.root, image_uri))
        if sha and source.image(sha) not in candidates:
            candidates.append(source.image(sha))
        jobs.append(ImageJob(candidates=tuple(candidates), expected_sha256=sha or None))
    return jobs


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


def find_matches(config: DedupeConfig, table: pa.Table, hashes: ImageHashes, jobs: list[ImageJob],
                 model: EmbeddingModel | None,
                 ) -> tuple[list[rules.RuleEdges], dict[str, np.ndarray], dict[str, rules.PairRule]]:
    """Edges of every enabled rule, the keys of the key rules and the enabled pair rules.

    ``jobs`` are the readable images (row i of ``table``), read again only when ``model`` (the
    embedding rule's) is given.
    """
    keys: dict[str, np.ndarray] = {}
    if config.sha256_rule:
        keys[rules.SHA256] = rules.equal_value_ids(pa.array(hashes.sha256, pa.string()))
    detailed = grid_hash.has_detail(hashes.colour)
    if config.grid_rule:
        grid_ids = np.unique(hashes.grid, return_inverse=True)[1].ravel().astype(np.int64)
        keys[rules.GRID] = np.where(detailed, grid_ids, -1)
    if config.title_rule:
        keys[rules.TITLE] = rules.equal_value_ids(table["title_normalized"])
    edges = [rules.key_edges(name, key, key >= 0) for name, key in keys.items()]
    pair_rules: dict[str, rules.PairRule] = {}
    if config.phash_rule:
        near = rules.NearRule(phashes=hashes.phash, phashes256=hashes.phash256, thumbnails=hashes.thumbnail,
                              threshold=config.near_threshold, verify_bits=config.near_verify_bits,
                              colour_tolerance=config.near_colour_tolerance)
        edges.append(rules.phash_edges(near, detailed, progress=config.progress))
        pair_rules[rules.PHASH] = near
    if model is not None and len(jobs):
        vectors = embed_images(jobs, model, batch_size=config.embedding_batch_size, progress=config.progress)
        similar = rules.EmbeddingRule(vectors=vectors, threshold=config.embedding_threshold)
        edges.append(rules.embedding_edges(similar, progress=config.progress))
        pair_rules[rules.EMBEDDING] = similar
    return edges, keys, pair_rules


def rule_reports(config: DedupeConfig, edges: list[rules.RuleEdges], groups: Groups,
                 n: int) -> dict[str, RuleReport]:
    """Per-rule counts: matches on its own, and dropped products it explains."""
    enabled = {rules.SHA256: config.sha256_rule, rules.GRID: config.grid_rule,
               rules.PHASH: config.phash_rule, rules.EMBEDDING: bool(config.embedding_model),
               rules.TITLE: config.title_rule}
    out = {name: RuleReport(enabled=on) for name, on in enabled.items()}
    for rule_edges in edges:
        report = out[rule_edges.rule]
        matched = np.unique(np.concatenate([rule_edges.left, rule_edges.right]))
        report.matched_products = int(len(matched))
        roots = union_groups(n, [rule_edges])
        report.groups = int(np.sum(np.bincount(roots, minlength=n) >= 2)) if n else 0
    for name, report in out.items():
        report.dropped = int(np.sum(groups.rule == name))
    return out


def rejects_table(table: pa.Table, hashes: ImageHashes) -> pa.Table:
    """One row per unreadable image."""
    bad = np.nonzero(~hashes.ok)[0]
    ids = table["product_id"].to_pylist()
    return from_rows(({"product_id": ids[i], "stage": STAGE, "reason": hashes.reason[i],
                       "detail": hashes.detail[i]} for i in bad), REJECTS)


def largest_groups(groups: Groups, product_ids: np.ndarray, titles: list) -> list[dict]:
    """The biggest groups with their kept product and the rules that formed them."""
    kept = np.nonzero(groups.kept & (groups.group_size > 1))[0]
    kept = kept[np.lexsort((product_ids[kept], -groups.group_size[kept]))][:LARGEST_GROUPS_REPORTED]
    out = []
    for k in kept:
        members = np.nonzero(groups.kept_index == k)[0]
        out.append({"group_id": str(product_ids[k]), "size": int(groups.group_size[k]),
                    "kept_title": titles[k],
                    "rules": sorted({str(r) for r in groups.rule[members] if r is not None})})
    return out


def write_samples(config: DedupeConfig, out: DedupeLayout, table: pa.Table, jobs: list[ImageJob],
                  groups: Groups, summary: str) -> None:
    """Render ``samples.html`` for a few groups, re-reading only their images."""
    product_ids = table["product_id"].to_pylist()
    titles = table["title"].to_pylist()

    def read_image(i: int) -> bytes | None:
        try:
            return read_first(jobs[i].candidates)
        except FileNotFoundError:
            return None

    chosen = samples.select_groups(groups.kept_index, groups.group_size, groups.rule, config.sample_groups)
    pages = [samples.sample_members(k, groups.kept_index, groups.rule, groups.distance, product_ids,
                                    titles, read_image) for k in chosen]
    uri.write_bytes(out.samples_html, samples.render(pages, summary).encode(), content_type="text/html")


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
    all_jobs = image_jobs(table, source)
    with timings.phase("hash"):
        hashes = hash_images(all_jobs, workers=config.workers, chunk_size=config.chunk_size,
                             grid_cells=config.grid_cells, progress=config.progress)
    ok = hashes.ok
    readable_rows = np.nonzero(ok)[0]
    readable = table.take(pa.array(readable_rows, pa.int64()))
    good = ImageHashes(**{name: getattr(hashes, name)[ok] for name in ImageHashes.__dataclass_fields__})
    product_ids = np.array(readable["product_id"].to_pylist(), dtype=object)
    with timings.phase("match"):
        edges, keys, pair_rules = find_matches(config, readable, good, [all_jobs[i] for i in readable_rows], model)
    with timings.phase("group"):
        groups = build_groups(edges, keys, pair_rules,
                              pixels=good.width * good.height, completeness=completeness(readable),
                              product_ids=product_ids.astype(str))
    kept_rows = np.nonzero(groups.kept)[0]
    dropped_rows = np.nonzero(~groups.kept)[0]
    check_accounting(STAGE, table.num_rows, kept=len(kept_rows), duplicates=len(dropped_rows),
                     rejected=int((~ok).sum()))
    with timings.phase("write"):
        kept_table = readable.take(pa.array(kept_rows, pa.int64()))
        kept_table = kept_table.append_column("group_id", pa.array(product_ids[kept_rows].tolist(), pa.string()))
        kept_table = kept_table.append_column("group_size", pa.array(groups.group_size[kept_rows], pa.int32()))
        uri.makedirs(config.out_uri)
        uri.write_parquet(conform(kept_table, DEDUPED_PRODUCTS), out.products)
        duplicates = from_rows(({"product_id": product_ids[i], "group_id": product_ids[groups.kept_index[i]],
                                 "rule": groups.rule[i],
                                 "distance": None if np.isnan(groups.distance[i]) else float(groups.distance[i]),
                                 "kept_product_id": product_ids[groups.kept_index[i]]}
                                for i in dropped_rows), DUPLICATES)
        uri.write_parquet(duplicates, out.duplicates)
        rejects = rejects_table(table, hashes)
        uri.write_parquet(rejects, out.rejects)
        n_groups = int(np.sum(groups.kept & (groups.group_size > 1)))
        message = (f"{table.num_rows} products: {len(kept_rows)} kept, {len(dropped_rows)} duplicates "
                   f"in {n_groups} groups, {rejects.num_rows} rejected"
                   if table.num_rows else "empty input: no products, empty outputs written")
        write_samples(config, out, readable, [all_jobs[i] for i in readable_rows], groups, message)
    reasons = rejects["reason"].to_pylist()
    hash_seconds = timings.seconds.get("hash", 0.0)
    report = DedupeReport(
        input=table.num_rows, kept=len(kept_rows), duplicates=len(dropped_rows), rejected=rejects.num_rows,
        duplicate_groups=n_groups, near_threshold=config.near_threshold,
        near_colour_tolerance=config.near_colour_tolerance, near_verify_bits=config.near_verify_bits,
        embedding_model=config.embedding_model, embedding_threshold=config.embedding_threshold,
        rules=rule_reports(config, edges, groups, len(product_ids)),
        dropped_transitive=int(np.sum(groups.rule == rules.TRANSITIVE)),
        rejects_by_reason={r: reasons.count(r) for r in sorted(set(reasons))},
        largest_groups=largest_groups(groups, product_ids, readable["title"].to_pylist()),
        seconds=dict(timings.seconds),
        images_per_second=table.num_rows / hash_seconds if hash_seconds > 0 else 0.0,
        message=message,
        outputs={"products": out.products, "duplicates": out.duplicates, "rejects": out.rejects,
                 "samples": out.samples_html, "report": out.report},
    )
    write_report(report, config.out_uri)
    log.info(message)
    return report
