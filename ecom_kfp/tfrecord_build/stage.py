"""The TFRecord build stage: :func:`run`, in one process or fanned out over pods.

The build has a global step and a sharded write step (DESIGN rule 6):

1. ``plan`` (:mod:`.global_step`, once): read products, map categories, split by duplicate group,
   build the label vocabularies, train SentencePiece and Doc2Vec (on a bounded sample of the
   training titles), and cut each split into shard files, stored as a table of planned records.
2. ``write`` (:mod:`.shard_step`, piece ``shard_index`` of ``num_shards``, one pod each): write
   every ``num_shards``-th planned shard file.
3. ``merge`` (:mod:`.merge`, once): gather the pieces into one dataset and ``manifest.json``.

``all`` runs the three in this process through the same functions, writing the shards in place.
A shard file's bytes depend only on the plan, so N pieces write exactly the files one process
writes. Image failures surface only while writing, so a class kept by the vocabulary may end with
fewer than ``min_class_count`` records when its images fail; ``manifest.json`` counts what was written.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from typing import Any

from ecom_kfp.report import scalar_metrics
from ecom_kfp.scratch import scratch_dir
from ecom_kfp.settings import comma_separated
from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig, parse_fractions
from ecom_kfp.tfrecord_build.global_step import PlanReport, plan
from ecom_kfp.tfrecord_build.merge import TFRecordBuildReport, merge
from ecom_kfp.tfrecord_build.shard_step import PieceReport, write_piece


def run(config: TFRecordBuildConfig) -> TFRecordBuildReport | PlanReport | PieceReport:
    """Run ``config.step`` of the build; ``all`` builds the whole dataset under ``config.out``.

    Raises:
        InputError: ``--products`` is missing, malformed or empty, or no product falls in train.
        TaxonomyError: a malformed taxonomy or mapping file.
        TextModelError: the training titles cannot train SentencePiece.
        MergeError: ``--pieces`` do not form one complete fan-out of ``--plan``.
        DigestError: the plan's labels or text models are not the files it recorded.
    """
    if config.step == "plan":
        return plan(config)
    if config.step == "write":
        return write_piece(config)
    if config.step == "merge":
        return merge(config.plan, config.pieces, config.out)
    with scratch_dir("plan") as plan_root:
        _plan_in_own_process(replace(config, step="plan", out=plan_root))
        write_piece(replace(config, step="write", plan=plan_root, shard_index=0, num_shards=1))
        return merge(plan_root, [config.out], config.out)


def _plan_in_own_process(config: TFRecordBuildConfig) -> PlanReport:
    """Run the global step in a process of its own, as its pod would, and wait for it.

    In one process the global step's peak (the catalog's columns, SentencePiece and Doc2Vec training)
    stayed resident beside the writers for the whole write, as the allocators keep freed memory
    (even after ``malloc_trim``): at 176k products the process handing out shard files held ~400 MB
    through the write, ~85 MB once the plan ran in a process of its own, for ~1 s of start-up.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), initializer=_log_to_stderr,
                             initargs=(logging.getLogger().level,)) as pool:
        return pool.submit(plan, config).result()


def _log_to_stderr(level: int) -> None:
    """Log at the parent's level to standard error, which a quiet terminal has pointed at its log
    file: a spawned process starts without the parent's handlers and would drop INFO (gensim's)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_component(metrics: Any, **settings: Any) -> None:
    """Run a step from a KFP component's parameters (``split_fractions`` and ``title_attributes`` as
    the text a pipeline parameter holds) without progress bars, and log its report's numbers to
    ``metrics`` (an ``Output[Metrics]``; ``None`` logs nothing)."""
    if isinstance(settings.get("split_fractions"), str):
        settings["split_fractions"] = parse_fractions(settings["split_fractions"])
    if isinstance(settings.get("title_attributes"), str):
        settings["title_attributes"] = comma_separated(settings["title_attributes"])
    report = run(TFRecordBuildConfig(progress=False, **settings))
    if metrics is not None:
        for name, value in scalar_metrics(report).items():
            metrics.log_metric(name, value)
