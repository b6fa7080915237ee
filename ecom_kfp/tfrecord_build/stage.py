"""The TFRecord build stage: :func:`run`.

Order of work: read products (rejecting those without title or image reference), optionally map
categories onto the Google Product Taxonomy, split by duplicate group, build the label
vocabularies and train the title models on the training split, then write the shards in
parallel. Image failures surface only while writing, so a class kept by the vocabulary may end
with fewer than ``min_class_count`` records when its images fail; ``manifest.json`` counts what
was actually written.

Fan-out: every piece (``shard_index`` of ``num_shards``) fits the same vocabularies and text
models (all deterministic) and writes every ``num_shards``-th shard file of the global plan, so
the pieces' directories merge by copying (:mod:`ecom_kfp.tfrecord_build.merge`). Products rejected
before writing are reported by piece 0 only, so merged rejects count each product once.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ecom_kfp import uri
from ecom_kfp.contracts import labels as label_files
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.features import FeatureSpec
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.report import Timings, check_accounting, write_report
from ecom_kfp.tfrecord_build import manifest as manifest_keys
from ecom_kfp.tfrecord_build.config import SPLITS, TFRecordBuildConfig
from ecom_kfp.tfrecord_build.inputs import InputError, Product, read_products
from ecom_kfp.tfrecord_build.labels import LabelSpace, OtherReason
from ecom_kfp.tfrecord_build.rejects import STAGE
from ecom_kfp.tfrecord_build.splits import assign_splits
from ecom_kfp.tfrecord_build.taxonomy import TaxonomyMapping
from ecom_kfp.tfrecord_build.text import (
    PieceVectors,
    save_doc2vec,
    sentencepiece_processor,
    train_doc2vec,
    train_sentencepiece,
)
from ecom_kfp.tfrecord_build.writer import (
    RecordInput,
    ShardResult,
    WriterSettings,
    estimate_record_bytes,
    plan_shards,
    record_order,
    write_shards,
)


@dataclass
class TFRecordBuildReport:
    """``report.json`` of the TFRecord build.

    Attributes:
        input_products: Rows of the products table.
        records: Records this run wrote (all splits).
        rejected: Products rejected by this run, and ``rejected_by_reason`` per reason code.
        in_other_pieces: Products written by the other fan-out pieces.
        splits: Records written per split.
        split_products: Products assigned to each split (whole input, before image failures).
        num_levels: Label levels; ``classes`` per level excluding ``other``.
        folding: Folded classes per level and ``other`` records per split, level and reason.
        golden_test: The test split's size and, per level, classes it covers and misses.
        text: SentencePiece and Doc2Vec facts (vocabulary lowered or not).
        taxonomy: Mapped and unmapped products when a taxonomy mapping was used.
        shards: Files written per split, and their total ``bytes``.
        records_per_second: Records written per second of the write phase (wall time, including
            starting the writer processes).
        shard_seconds: Time the writers spent inside shard files, summed over files; records per
            such second (``records_per_process_second``) is the per-core rate once processes run.
        seconds: Wall time per phase.
    """

    input_products: int
    records: int
    rejected: int
    rejected_by_reason: dict[str, int]
    in_other_pieces: int
    splits: dict[str, int]
    split_products: dict[str, int]
    num_levels: int
    classes: dict[str, int]
    folding: dict[str, Any]
    golden_test: dict[str, Any]
    text: dict[str, Any]
    taxonomy: dict[str, Any] | None
    shards: dict[str, int]
    bytes: int
    shard_index: int
    num_shards: int
    workers: int
    records_per_second: float
    shard_seconds: float
    records_per_process_second: float
    seconds: dict[str, float] = field(default_factory=dict)


def run(config: TFRecordBuildConfig) -> TFRecordBuildReport:
    """Build the dataset described by ``config``; writes everything under ``config.out``.

    Raises:
        InputError: ``--products`` is missing, malformed or empty, or no product falls in train.
        TaxonomyError: a malformed taxonomy or mapping file.
        TextModelError: the training titles cannot train SentencePiece.
    """
    layout = DatasetLayout(config.out)
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
        label_files.save_all(label_space.vocabularies, layout.labels)
    with timings.phase("sentencepiece"):
        sentencepiece = train_sentencepiece([p.title for p in train], config.spm_vocab_size, config.seed)
        uri.write_bytes(layout.spm_model, sentencepiece.model)
    spec = FeatureSpec(num_levels=label_space.num_levels, title_vector_dim=config.doc2vec_dim,
                       image_size=config.image_size, resize_mode=config.resize_mode)
    with tempfile.TemporaryDirectory(prefix="ecom-kfp-text-") as text_dir:
        with timings.phase("doc2vec"):
            pieces = sentencepiece_processor(sentencepiece.model).encode([p.title for p in train], out_type=str)
            doc2vec = train_doc2vec(list(zip((p.product_id for p in train), pieces, strict=True)),
                                    config.doc2vec_dim, config.doc2vec_epochs, config.seed)
            local_doc2vec = os.path.join(text_dir, "doc2vec.model")
            save_doc2vec(doc2vec, local_doc2vec)
            PieceVectors.of(doc2vec).save(layout, {"dim": config.doc2vec_dim, "epochs": config.doc2vec_epochs})
            local_spm = os.path.join(text_dir, "spm.model")
            uri.write_bytes(local_spm, sentencepiece.model)
        settings = WriterSettings(spec, config.jpeg_quality, local_spm, local_doc2vec, config.seed,
                                  config.doc2vec_infer_epochs)
        with timings.phase("plan"):
            by_split = {split: record_order((_record_input(p, label_space, paths) for p in products
                                             if split_of[p.product_id] == split), config.seed) for split in SPLITS}
            record_bytes = estimate_record_bytes(by_split["train"], settings)
            plan = [task for split in SPLITS for task in plan_shards(split, by_split[split], record_bytes,
                                                                     config.shard_target_bytes, layout)]
            mine = plan[config.shard_index::config.num_shards]
        with timings.phase("write"):
            results = write_shards(mine, settings, config.worker_count, config.progress)

    rejects = (early_rejects if config.shard_index == 0 else []) + \
        [reject for result in results for reject in result.rejects]
    written = sum(r.records for r in results)
    others = sum(len(t.records) for t in plan) - sum(len(t.records) for t in mine)
    if config.shard_index != 0:
        others += len(early_rejects)
    check_accounting(STAGE, len(products) + len(early_rejects), records=written, rejected=len(rejects),
                     in_other_pieces=others)
    uri.write_parquet(tables.rejects_table(rejects, STAGE), layout.rejects)

    counts = _counts(results, label_space)
    folding = {"min_class_count": config.min_class_count, "levels": label_space.folding_report(),
               "other_records": _other_records(results, label_space.num_levels)}
    text = {"spm_vocab_size_requested": sentencepiece.requested_vocab_size, "spm_vocab_size": sentencepiece.vocab_size,
            "spm_vocab_lowered": sentencepiece.lowered, "doc2vec_dim": config.doc2vec_dim,
            "doc2vec_epochs": config.doc2vec_epochs,
            "doc2vec_infer_epochs": config.doc2vec_infer_epochs, "doc2vec_pieces": len(doc2vec.wv),
            "training_titles": len(train)}
    shard_files = Counter(r.split for r in results)
    uri.write_json(layout.manifest, {
        manifest_keys.FEATURE_SPEC: spec.to_dict(),
        manifest_keys.COUNTS: counts,
        "folding": folding,
        "splits": {"fractions": list(config.split_fractions), "stratify": config.stratify, "salt": config.split_salt,
                   "cv_folds": config.cv_folds, "cv_fold": config.cv_fold},
        "text": text,
        "taxonomy": taxonomy_report,
        "shards": {"files": {s: shard_files.get(s, 0) for s in SPLITS},
                   "planned_files": {s: sum(1 for t in plan if t.split == s) for s in SPLITS},
                   "shard_index": config.shard_index, "num_shards": config.num_shards,
                   "target_mb": config.shard_target_mb, "estimated_record_bytes": record_bytes},
        "input": config.products,
        "versions": manifest_keys.versions(),
        manifest_keys.DIGESTS: manifest_keys.dataset_digests(config.out),
    })
    split_products = Counter(split_of.values())
    shard_seconds = sum(r.seconds for r in results)
    report = TFRecordBuildReport(
        input_products=len(products) + len(early_rejects), records=written, rejected=len(rejects),
        rejected_by_reason=dict(Counter(r.reason.value for r in rejects)), in_other_pieces=others,
        splits={s: counts[s]["total"] for s in SPLITS}, split_products={s: split_products.get(s, 0) for s in SPLITS},
        num_levels=label_space.num_levels,
        classes={f"level_{v.level}": len(v) - 1 for v in label_space.vocabularies},
        folding=folding, golden_test=golden_test_coverage(counts["test"], label_space), text=text,
        taxonomy=taxonomy_report, shards={s: shard_files.get(s, 0) for s in SPLITS},
        bytes=sum(r.bytes for r in results), shard_index=config.shard_index, num_shards=config.num_shards,
        workers=config.worker_count,
        records_per_second=written / timings.seconds["write"] if timings.seconds["write"] > 0 else 0.0,
        shard_seconds=shard_seconds, records_per_process_second=written / shard_seconds if shard_seconds > 0 else 0.0,
        seconds=dict(timings.seconds))
    write_report(report, config.out)
    return report


def _category_paths(products: list[Product],
                    config: TFRecordBuildConfig) -> tuple[dict[str, tuple[str, ...] | None], dict | None]:
    """Each product's category path, mapped onto the taxonomy when one is given (``None`` = unmapped)."""
    if not config.taxonomy:
        return {p.product_id: p.category_path for p in products}, None
    mapping = TaxonomyMapping.load(config.taxonomy, config.taxonomy_mapping)
    paths = {p.product_id: mapping.map(p.category_path) for p in products}
    unmapped = Counter(label_files.SEPARATOR.join(p.category_path) for p in products if paths[p.product_id] is None)
    return paths, {"taxonomy": config.taxonomy, "mapping": config.taxonomy_mapping, "mapping_entries": len(mapping.targets),
                   "mapped": len(products) - sum(unmapped.values()), "unmapped": sum(unmapped.values()),
                   "unmapped_paths": dict(sorted(unmapped.items()))}


def _record_input(product: Product, label_space: LabelSpace, paths: dict[str, tuple[str, ...] | None]) -> RecordInput:
    path = paths[product.product_id]
    labels = label_space.label(path)
    return RecordInput(product.product_id, product.title, product.image_uri, labels.ids,
                       tuple(r.value if r else None for r in labels.other_reasons), product.business_value,
                       product.group_id, label_files.SEPARATOR.join(path) if path else "")


def _counts(results: list[ShardResult], label_space: LabelSpace) -> dict[str, Any]:
    counts = {}
    for split in SPLITS:
        mine = [r for r in results if r.split == split]
        per_level = [sum((r.class_counts[level] for r in mine), Counter()) for level in range(label_space.num_levels)]
        counts[split] = manifest_keys.split_counts(sum(r.records for r in mine), per_level, label_space.vocabularies)
    return counts


def _other_records(results: list[ShardResult], num_levels: int) -> dict[str, dict[str, dict[str, int]]]:
    out = {}
    for split in SPLITS:
        mine = [r for r in results if r.split == split]
        out[split] = {f"level_{level + 1}": {reason.value: sum(r.other_reasons[level][reason.value] for r in mine)
                                             for reason in OtherReason} for level in range(num_levels)}
    return out


def golden_test_coverage(test_counts: dict[str, Any], label_space: LabelSpace) -> dict[str, Any]:
    """The test split's size and, per level, how many of the vocabulary's classes it has records of."""
    coverage: dict[str, Any] = {"records": test_counts["total"]}
    for vocabulary in label_space.vocabularies:
        key = f"level_{vocabulary.level}"
        named = vocabulary.classes[1:]
        missing = [name for name in named if not test_counts[key].get(name)]
        coverage[key] = {"classes": len(named), "covered": len(named) - len(missing), "missing": missing}
    return coverage
