"""The global step of the TFRecord build (``--step plan``): what needs the whole catalog, done once.

Reads the products (rejecting those without title or image reference), maps categories onto the
taxonomy when asked, splits by duplicate group, builds the label vocabularies, trains
SentencePiece and Doc2Vec on the training titles (a deterministic sample of at most
``text_sample`` of them), estimates the record size and cuts each split, in its record order, into
shard files. The plan is columnar: one Parquet row per record (:data:`~.writer.PLAN_SCHEMA`), so
what the step holds per product is a few column values, and a write piece reads only its files'
rows. ``plan.json`` fixes everything a writer does with a record (feature spec, JPEG quality,
title-vector seed and epochs) and the SHA-256 of ``labels/`` and ``text/``, so N pieces cannot write
differently and no piece loads a model file the plan did not write.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ecom_kfp import uri
from ecom_kfp.contracts import labels as label_files
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.digests import tree_digests
from ecom_kfp.contracts.features import FeatureSpec
from ecom_kfp.contracts.layouts import BuildPlanLayout, DatasetLayout
from ecom_kfp.report import Timings, check_accounting, write_report
from ecom_kfp.tfrecord_build.config import SPLITS, TFRecordBuildConfig
from ecom_kfp.tfrecord_build.inputs import InputError, Product, read_products
from ecom_kfp.tfrecord_build.labels import LabelSpace
from ecom_kfp.tfrecord_build.rejects import STAGE
from ecom_kfp.tfrecord_build.splits import assign_splits, unit_hash
from ecom_kfp.tfrecord_build.taxonomy import TaxonomyMapping
from ecom_kfp.tfrecord_build.text import (
    Doc2VecInference,
    sentencepiece_processor,
    train_doc2vec,
    train_sentencepiece,
)
from ecom_kfp.tfrecord_build.writer import (
    RecordInput,
    WriterSettings,
    estimate_record_bytes,
    plan_table,
    record_order,
    split_files,
)

#: What the write pieces read of the plan's root besides ``plan.json`` and ``plan.parquet``.
TEXT_AND_LABELS = ("labels", "text")


@dataclass
class PlanReport:
    """``report.json`` of the global step.

    Attributes:
        input_products: Rows of the products table.
        planned_records: Records the shard files are to hold (before image failures).
        rejected: Products rejected before writing, and ``rejected_by_reason``.
        split_products: Products per split.
        files: Shard files per split.
        num_levels: Label levels; ``classes`` per level excluding ``other``.
        text: SentencePiece and Doc2Vec facts, the text sample among them.
        estimated_record_bytes: Mean record size the shard files were cut with.
        plan_id: SHA-256 of ``plan.json``; every piece and the merge check it.
        seconds: Wall time per phase.
    """

    input_products: int
    planned_records: int
    rejected: int
    rejected_by_reason: dict[str, int]
    split_products: dict[str, int]
    files: dict[str, int]
    num_levels: int
    classes: dict[str, int]
    text: dict[str, Any]
    estimated_record_bytes: int | None
    plan_id: str
    seconds: dict[str, float] = field(default_factory=dict)


def text_sample(train: list[Product], limit: int, seed: int) -> list[Product]:
    """At most ``limit`` training products (all when ``limit`` is 0), chosen by a seeded hash of the
    product id and kept in input order, so the sample does not depend on how the input was sharded."""
    if not limit or len(train) <= limit:
        return train
    keys = sorted((unit_hash(f"text-{seed}", p.product_id), p.product_id) for p in train)
    chosen = {pid for _, pid in keys[:limit]}
    return [p for p in train if p.product_id in chosen]


def plan(config: TFRecordBuildConfig) -> PlanReport:
    """Write the global step's :class:`~ecom_kfp.contracts.layouts.BuildPlanLayout` to ``config.out``.

    Raises:
        InputError: ``--products`` is missing, malformed or empty, or no product falls in train.
        TaxonomyError: a malformed taxonomy or mapping file.
        TextModelError: the training titles cannot train SentencePiece.
    """
    layout, files = BuildPlanLayout(config.out), DatasetLayout(config.out)
    timings = Timings()
    with timings.phase("read"):
        products, early_rejects = read_products(config.products)
        paths, taxonomy_report = _category_paths(products, config)
    with timings.phase("split"):
        split_of = assign_splits(products, config.split_fractions, salt=config.split_salt, stratify=config.stratify,
                                 folds=config.cv_folds, fold=config.cv_fold)
    train = [p for p in products if split_of[p.product_id] == "train"]
    if not train:
        raise InputError(f"--products {config.products}: none of its {len(products)} usable products fell in the "
                         f"train split (--split-fractions {','.join(map(str, config.split_fractions))})")
    with timings.phase("labels"):
        label_space = LabelSpace.build([paths[p.product_id] or () for p in train], config.max_levels,
                                       config.min_class_count)
        label_files.save_all(label_space.vocabularies, files.labels)
    sample = text_sample(train, config.text_sample, config.seed)
    with timings.phase("sentencepiece"):
        sentencepiece = train_sentencepiece([p.title for p in sample], config.spm_vocab_size, config.seed)
        uri.write_bytes(files.spm_model, sentencepiece.model)
    with timings.phase("doc2vec"):
        # Interned: every title's pieces would otherwise be fresh strings, ~0.6 KB per training title.
        pieces = [[sys.intern(piece) for piece in title] for title in
                  sentencepiece_processor(sentencepiece.model).encode([p.title for p in sample], out_type=str)]
        doc2vec = train_doc2vec(list(zip((p.product_id for p in sample), pieces, strict=True)),
                                config.doc2vec_dim, config.doc2vec_epochs, config.seed)
        Doc2VecInference.of(doc2vec).save(files, {"dim": config.doc2vec_dim, "epochs": config.doc2vec_epochs})
        doc2vec_pieces = len(doc2vec.wv)
        del doc2vec, pieces
    spec = FeatureSpec(num_levels=label_space.num_levels, title_vector_dim=config.doc2vec_dim,
                       image_size=config.image_size, resize_mode=config.resize_mode)
    settings = WriterSettings(spec, config.jpeg_quality, config.out, config.seed, config.doc2vec_infer_epochs)
    with timings.phase("plan"):
        by_split = {split: record_order((_record_input(p, label_space, paths) for p in products
                                         if split_of[p.product_id] == split), config.seed) for split in SPLITS}
        record_bytes = estimate_record_bytes(by_split["train"], settings)
        cut = {split: split_files(by_split[split], record_bytes, config.shard_target_bytes) for split in SPLITS}
        uri.write_parquet(plan_table(cut), layout.records)
    check_accounting(STAGE, len(products) + len(early_rejects), planned=len(products), rejected=len(early_rejects))
    uri.write_parquet(tables.rejects_table(early_rejects, STAGE), layout.rejects)
    text = {"spm_vocab_size_requested": sentencepiece.requested_vocab_size, "spm_vocab_size": sentencepiece.vocab_size,
            "spm_vocab_lowered": sentencepiece.lowered, "doc2vec_dim": config.doc2vec_dim,
            "doc2vec_epochs": config.doc2vec_epochs, "doc2vec_infer_epochs": config.doc2vec_infer_epochs,
            "doc2vec_pieces": doc2vec_pieces, "train_products": len(train), "text_sample": config.text_sample,
            "training_titles": len(sample), "sampled": len(sample) < len(train)}
    split_products = Counter(split_of.values())
    document = {
        "feature_spec": spec.to_dict(),
        "writer": {"jpeg_quality": config.jpeg_quality, "seed": config.seed,
                   "infer_epochs": config.doc2vec_infer_epochs},
        "files": {s: len(cut[s]) for s in SPLITS},
        "records": {s: len(by_split[s]) for s in SPLITS},
        "folding": {"min_class_count": config.min_class_count, "levels": label_space.folding_report()},
        "splits": {"fractions": list(config.split_fractions), "stratify": config.stratify, "salt": config.split_salt,
                   "cv_folds": config.cv_folds, "cv_fold": config.cv_fold},
        "split_products": {s: split_products.get(s, 0) for s in SPLITS},
        "text": text,
        "taxonomy": taxonomy_report,
        "input": config.products,
        "input_products": len(products) + len(early_rejects),
        "target_mb": config.shard_target_mb,
        "estimated_record_bytes": record_bytes,
        "digests": tree_digests(config.out, TEXT_AND_LABELS),
    }
    uri.write_json(layout.plan, document)
    report = PlanReport(
        input_products=document["input_products"], planned_records=len(products), rejected=len(early_rejects),
        rejected_by_reason=dict(Counter(r.reason.value for r in early_rejects)),
        split_products=document["split_products"], files=document["files"], num_levels=label_space.num_levels,
        classes={f"level_{v.level}": len(v) - 1 for v in label_space.vocabularies}, text=text,
        estimated_record_bytes=record_bytes, plan_id=plan_id(config.out), seconds=dict(timings.seconds))
    write_report(report, config.out)
    return report


def plan_id(plan_root: str) -> str:
    """SHA-256 of a plan's ``plan.json``: pieces record it, the merge refuses pieces of another plan."""
    return hashlib.sha256(uri.read_bytes(BuildPlanLayout(plan_root).plan)).hexdigest()


def _category_paths(products: list[Product],
                    config: TFRecordBuildConfig) -> tuple[dict[str, tuple[str, ...] | None], dict | None]:
    """Each product's category path, mapped onto the taxonomy when one is given (``None`` = unmapped)."""
    if not config.taxonomy:
        return {p.product_id: p.category_path for p in products}, None
    mapping = TaxonomyMapping.load(config.taxonomy, config.taxonomy_mapping)
    paths = {p.product_id: mapping.map(p.category_path) for p in products}
    unmapped = Counter(label_files.SEPARATOR.join(p.category_path) for p in products if paths[p.product_id] is None)
    return paths, {"taxonomy": config.taxonomy, "mapping": config.taxonomy_mapping,
                   "mapping_entries": len(mapping.targets), "mapped": len(products) - sum(unmapped.values()),
                   "unmapped": sum(unmapped.values()), "unmapped_paths": dict(sorted(unmapped.items()))}


def _record_input(product: Product, label_space: LabelSpace, paths: dict[str, tuple[str, ...] | None]) -> RecordInput:
    path = paths[product.product_id]
    labels = label_space.label(path)
    return RecordInput(product.product_id, product.title, product.image_uri, labels.ids,
                       tuple(r.value if r else None for r in labels.other_reasons), product.business_value,
                       product.group_id, label_files.SEPARATOR.join(path) if path else "")
