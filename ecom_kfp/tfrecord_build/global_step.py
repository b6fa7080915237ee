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
import io
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecom_kfp import uri
from ecom_kfp.contracts import labels as label_files
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.digests import tree_digests, verify_tree
from ecom_kfp.contracts.features import FeatureSpec
from ecom_kfp.contracts.layouts import BuildPlanLayout, DatasetLayout
from ecom_kfp.report import Timings, check_accounting, write_report
from ecom_kfp.tfrecord_build.config import SPLITS, TFRecordBuildConfig
from ecom_kfp.tfrecord_build.inputs import Catalog, InputError, read_catalog
from ecom_kfp.tfrecord_build.labels import LabelSpace
from ecom_kfp.tfrecord_build.rejects import STAGE
from ecom_kfp.tfrecord_build.splits import TRAIN, hash_order, split_indices
from ecom_kfp.tfrecord_build.taxonomy import TaxonomyMapping
from ecom_kfp.tfrecord_build.text import (
    Doc2VecInference,
    sentencepiece_processor,
    train_doc2vec,
    train_sentencepiece,
)
from ecom_kfp.tfrecord_build.writer import (
    PLAN_SCHEMA,
    SIZE_SAMPLE,
    WriterSettings,
    estimate_record_bytes,
    file_cuts,
    records_of,
)

#: What the write pieces read of the plan's root besides ``plan.json`` and ``plan.parquet``.
TEXT_AND_LABELS = ("labels", "text")
#: Plan rows built and written at a time.
PLAN_BATCH = 10_000
#: Training titles SentencePiece encodes at a time for Doc2Vec.
ENCODE_BATCH = 4_096


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


def text_sample(product_ids: pa.Array, train: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` of the ``train`` rows (all when ``limit`` is 0), chosen by a seeded hash of the
    product id and kept in input order, so the sample does not depend on how the input was sharded."""
    if not limit or len(train) <= limit:
        return train
    return np.sort(train[hash_order(f"text-{seed}", product_ids.take(train))[:limit]])


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
        catalog, early_rejects = read_catalog(config.products, config.title_attributes)
        paths, taxonomy_report = _category_paths(catalog, config)
    products = catalog.table.num_rows
    with timings.phase("split"):
        split = split_indices(catalog.column("product_id"), catalog.column("group_id"),
                              pa.array([p[0] if p else "" for p in catalog.paths]).take(catalog.column("path")),
                              catalog.column("label_conflict").to_numpy(zero_copy_only=False), config.split_fractions,
                              salt=config.split_salt, stratify=config.stratify, folds=config.cv_folds, fold=config.cv_fold)
    train = np.flatnonzero(split == TRAIN)
    if not len(train):
        raise InputError(f"--products {config.products}: none of its {products} usable products fell in the "
                         f"train split (--split-fractions {','.join(map(str, config.split_fractions))})")
    path_codes = catalog.column("path").to_numpy(zero_copy_only=False)
    with timings.phase("labels"):
        label_space = LabelSpace.build([paths[code] or () for code in path_codes[train].tolist()], config.max_levels,
                                       config.min_class_count)
        label_files.save_all(label_space.vocabularies, files.labels)
    sample = text_sample(catalog.column("product_id"), train, config.text_sample, config.seed)
    titles = catalog.column("title").take(sample).to_pylist()
    with timings.phase("sentencepiece"):
        sentencepiece = train_sentencepiece(titles, config.spm_vocab_size, config.seed)
        uri.write_bytes(files.spm_model, sentencepiece.model)
    with timings.phase("doc2vec"):
        # Interned batch by batch: every title's pieces would otherwise be fresh strings, ~0.6 KB per
        # training title, and encoding all titles at once held them all (~160 MB at 124k titles).
        processor = sentencepiece_processor(sentencepiece.model)
        pieces = [[sys.intern(piece) for piece in title] for start in range(0, len(titles), ENCODE_BATCH)
                  for title in processor.encode(titles[start:start + ENCODE_BATCH], out_type=str)]
        doc2vec = train_doc2vec(list(zip(catalog.column("product_id").take(sample).to_pylist(), pieces, strict=True)),
                                config.doc2vec_dim, config.doc2vec_epochs, config.seed)
        Doc2VecInference.of(doc2vec).save(files, {"dim": config.doc2vec_dim, "epochs": config.doc2vec_epochs})
        doc2vec_pieces = len(doc2vec.wv)
        del doc2vec, pieces
    spec = FeatureSpec(num_levels=label_space.num_levels, title_vector_dim=config.doc2vec_dim,
                       image_size=config.image_size, resize_mode=config.resize_mode,
                       title_attributes=tuple(config.title_attributes))
    settings = WriterSettings(spec, config.jpeg_quality, config.out, config.seed, config.doc2vec_infer_epochs)
    with timings.phase("plan"):
        order = {name: rows[hash_order(f"order-{config.seed}", catalog.column("product_id").take(rows))]
                 for name, rows in ((name, np.flatnonzero(split == index)) for index, name in enumerate(SPLITS))}
        labelled = _labelled(label_space, paths)
        record_bytes = estimate_record_bytes(records_of(_plan_rows(catalog, labelled, order["train"][:SIZE_SAMPLE])),
                                             settings)
        cut = {name: file_cuts(len(order[name]), record_bytes, config.shard_target_bytes) for name in SPLITS}
        _write_plan(catalog, labelled, order, cut, layout.records)
    check_accounting(STAGE, products + len(early_rejects), planned=products, rejected=len(early_rejects))
    uri.write_parquet(tables.rejects_table(early_rejects, STAGE), layout.rejects)
    text = {"spm_vocab_size_requested": sentencepiece.requested_vocab_size, "spm_vocab_size": sentencepiece.vocab_size,
            "spm_vocab_lowered": sentencepiece.lowered, "doc2vec_dim": config.doc2vec_dim,
            "doc2vec_epochs": config.doc2vec_epochs, "doc2vec_infer_epochs": config.doc2vec_infer_epochs,
            "doc2vec_pieces": doc2vec_pieces, "train_products": len(train), "text_sample": config.text_sample,
            "training_titles": len(titles), "sampled": len(titles) < len(train)}
    split_products = {name: len(order[name]) for name in SPLITS}
    document = {
        "feature_spec": spec.to_dict(),
        "writer": {"jpeg_quality": config.jpeg_quality, "seed": config.seed,
                   "infer_epochs": config.doc2vec_infer_epochs},
        "files": {s: cut[s][0] for s in SPLITS},
        "records": split_products,
        "folding": {"min_class_count": config.min_class_count, "levels": label_space.folding_report()},
        "splits": {"fractions": list(config.split_fractions), "stratify": config.stratify, "salt": config.split_salt,
                   "cv_folds": config.cv_folds, "cv_fold": config.cv_fold},
        "split_products": split_products,
        "text": text,
        "taxonomy": taxonomy_report,
        "input": config.products,
        "input_products": products + len(early_rejects),
        "target_mb": config.shard_target_mb,
        "estimated_record_bytes": record_bytes,
        "digests": tree_digests(config.out, TEXT_AND_LABELS),
    }
    uri.write_json(layout.plan, document)
    report = PlanReport(
        input_products=document["input_products"], planned_records=products, rejected=len(early_rejects),
        rejected_by_reason=dict(Counter(r.reason.value for r in early_rejects)),
        split_products=document["split_products"], files=document["files"], num_levels=label_space.num_levels,
        classes={f"level_{v.level}": len(v) - 1 for v in label_space.vocabularies}, text=text,
        estimated_record_bytes=record_bytes, plan_id=plan_id(config.out), seconds=dict(timings.seconds))
    write_report(report, config.out)
    return report


def plan_id(plan_root: str) -> str:
    """SHA-256 of a plan's ``plan.json``: pieces record it, the merge refuses pieces of another plan."""
    return hashlib.sha256(uri.read_bytes(BuildPlanLayout(plan_root).plan)).hexdigest()


def read_plan(plan_root: str, flag: str) -> tuple[dict[str, Any], str]:
    """A plan's ``plan.json`` and its :func:`plan_id`, from one read, after checking that its labels
    and text models are the files it recorded (so the id names the plan that was used).

    Raises:
        DigestError: a file under ``labels/`` or ``text/`` differs from the plan's digests.
    """
    data = uri.read_bytes(BuildPlanLayout(plan_root).plan)
    document = json.loads(data)
    verify_tree(plan_root, document["digests"], TEXT_AND_LABELS, f"{flag} {plan_root}")
    return document, hashlib.sha256(data).hexdigest()


def _category_paths(catalog: Catalog, config: TFRecordBuildConfig) -> tuple[list[tuple[str, ...] | None], dict | None]:
    """Each distinct category path of ``catalog.paths``, mapped onto the taxonomy when one is given
    (``None`` = unmapped)."""
    if not config.taxonomy:
        return list(catalog.paths), None
    mapping = TaxonomyMapping.load(config.taxonomy, config.taxonomy_mapping)
    paths = [mapping.map(path) for path in catalog.paths]
    products = np.bincount(catalog.column("path").to_numpy(zero_copy_only=False), minlength=len(paths))
    unmapped: Counter[str] = Counter()
    for code in (code for code, path in enumerate(paths) if path is None and products[code]):
        unmapped[label_files.SEPARATOR.join(catalog.paths[code])] += int(products[code])
    return paths, {"taxonomy": config.taxonomy, "mapping": config.taxonomy_mapping,
                   "mapping_entries": len(mapping.targets), "mapped": catalog.table.num_rows - sum(unmapped.values()),
                   "unmapped": sum(unmapped.values()), "unmapped_paths": dict(sorted(unmapped.items()))}


def _labelled(label_space: LabelSpace, paths: list[tuple[str, ...] | None]) -> pa.Table:
    """The plan columns that follow from a product's (mapped) category path, one row per distinct path."""
    labels = [label_space.label(path) for path in paths]
    return pa.table({"labels": pa.array([list(lab.ids) for lab in labels], pa.list_(pa.int32())),
                     "other_reasons": pa.array([[r.value if r else None for r in lab.other_reasons] for lab in labels],
                                               pa.list_(pa.string())),
                     "category_path": pa.array([label_files.SEPARATOR.join(p) if p else "" for p in paths], pa.string())})


def _write_plan(catalog: Catalog, labelled: pa.Table, order: dict[str, np.ndarray], cut: dict[str, tuple[int, int]],
                target: str) -> None:
    """Write the :data:`~.writer.PLAN_SCHEMA` rows of every split's files (train's first), :data:`PLAN_BATCH`
    rows at a time, so the plan is never held whole."""
    buffer = io.BytesIO()
    number = 0  # the file's number across the splits
    with pq.ParquetWriter(buffer, PLAN_SCHEMA, compression="zstd") as out:
        for split in SPLITS:
            count, per_file = cut[split]
            for first in range(0, len(order[split]), PLAN_BATCH):
                shard = np.arange(first, min(first + PLAN_BATCH, len(order[split]))) // per_file
                rows = _plan_rows(catalog, labelled, order[split][first:first + PLAN_BATCH])
                for name, values in (("split", pa.repeat(split, len(shard))), ("shard", shard),
                                     ("shard_count", np.full(len(shard), count)), ("file", number + shard)):
                    rows = rows.append_column(name, pa.array(values, PLAN_SCHEMA.field(name).type))
                out.write_table(rows)
            number += count
    uri.write_bytes(target, buffer.getvalue())


def _plan_rows(catalog: Catalog, labelled: pa.Table, rows: np.ndarray) -> pa.Table:
    """The record fields of :data:`~.writer.PLAN_SCHEMA` for ``rows`` of the catalog, in that order."""
    products = catalog.table.take(rows)
    by_path = labelled.take(products.column("path"))
    return pa.table({"product_id": products["product_id"], "title": products["title"],
                     "image_uri": products["image_uri"], "labels": by_path["labels"],
                     "other_reasons": by_path["other_reasons"], "business_value": products["business_value"],
                     "group_id": products["group_id"], "category_path": by_path["category_path"]})
