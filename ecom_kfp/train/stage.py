"""``run(TrainConfig) -> TrainReport``: train, export and track one model.

With ``num_processes > 1`` (and not already under a launcher) the run re-launches itself under
``horovodrun`` (:mod:`ecom_kfp.train.launch`); every rank then executes :func:`train_worker`,
and rank 0 alone writes the :class:`~ecom_kfp.contracts.layouts.ModelLayout` and talks to MLflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.report import Timings, write_report
from ecom_kfp.train.config import ConfigError, TrainConfig
from ecom_kfp.train.distributed import Workers, init_workers, launched_by_horovod


@dataclass
class TrainReport:
    """``report.json`` of the training stage.

    Attributes:
        mlflow_run_id / mlflow_tracking_uri: Where params, metrics and artifacts were logged.
        num_processes: Horovod ranks that trained.
        epochs_trained / resumed_from_epoch: This run's epochs and the checkpoint it started from.
        steps_per_epoch / batch_size / global_batch_size / peak_learning_rate: The schedule.
        counts: Records per split; num_classes: classes per level.
        fit_splits: The splits the model was trained on (``val`` too with ``--fit-on-val``).
        embedding_rows_from_doc2vec: Title pieces whose embedding started from Doc2Vec.
        final_metrics: Last epoch's metrics, averaged over ranks.
        test_metrics: Rank 0's evaluation of the whole test split.
        examples_per_second: Training throughput of all ranks together (epochs after the first
            when there are several, so graph tracing is not counted).
        per_rank: Each rank's examples/s, weights checksum and un-averaged last-epoch metrics.
        timings: Wall seconds per phase.
    """

    data: str
    out: str
    backbone: str
    inputs: str
    num_processes: int
    image_size: int
    mlflow_run_id: str = ""
    mlflow_tracking_uri: str = ""
    epochs_trained: int = 0
    resumed_from_epoch: int = 0
    steps_per_epoch: int = 0
    batch_size: int = 0
    global_batch_size: int = 0
    peak_learning_rate: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    fit_splits: list[str] = field(default_factory=list)
    num_classes: list[int] = field(default_factory=list)
    embedding_rows_from_doc2vec: int = 0
    final_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    examples_per_second: float = 0.0
    per_rank: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    stage: str = "train"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainReport:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def run(config: TrainConfig) -> TrainReport:
    """Train per ``config``; returns rank 0's report (also written to ``out/report.json``)."""
    config.validate()
    if config.num_processes > 1 and not launched_by_horovod():
        from ecom_kfp.train.launch import run_horovod

        return run_horovod(config)
    report = train_worker(config, init_workers(config.fp16_allreduce))
    assert report is not None  # a single process is rank 0
    return report


def train_worker(config: TrainConfig, workers: Workers) -> TrainReport | None:
    """One rank's share of the run; rank 0 returns the report, the others ``None``."""
    import keras
    import tensorflow as tf

    from ecom_kfp.train import callbacks as cb
    from ecom_kfp.train.data import (
        PipelineOptions,
        TrainingData,
        eval_steps,
        image_head_name,
        make_dataset,
        output_name,
        steps_per_epoch,
    )
    from ecom_kfp.train.model import (
        ModelSpec,
        SmoothedSparseCrossentropy,
        build_classifier,
        logit_adjustment,
        set_backbone_trainable,
    )
    from ecom_kfp.train.text import TitleTokenizer, piece_embeddings

    # Seeding resets TensorFlow's eager context, which would drop the tokenizer's resource.
    keras.utils.set_random_seed(config.seed)
    timings = Timings()
    with timings.phase("load"):
        data = TrainingData.load(config.data)
        image_size = config.image_size or data.spec.image_size
        if config.level_weights and len(config.level_weights) != data.spec.num_levels:
            raise ConfigError(f"--level-weights has {len(config.level_weights)} values, the dataset has "
                              f"{data.spec.num_levels} levels")
        if config.weights and config.inputs == "title":
            raise ConfigError(f"--weights {config.weights} needs an image backbone, but --inputs is title")
        tokenizer = TitleTokenizer(data.layout.spm_model, config.max_title_tokens,
                                   config.title_word_buckets if config.inputs != "image" else 0)
        embeddings, from_doc2vec = (None, 0) if config.inputs == "image" else piece_embeddings(
            data.layout, config.embedding_dim, config.seed)

    report = TrainReport(data=config.data, out=config.out, backbone=config.backbone, inputs=config.inputs,
                         num_processes=workers.size, image_size=image_size, counts=data.counts,
                         num_classes=data.num_classes, embedding_rows_from_doc2vec=from_doc2vec)
    tracker = _start_tracking(config, report) if workers.is_chief else None
    try:
        with timings.phase("build"):
            if tf.config.list_physical_devices("GPU"):
                keras.mixed_precision.set_global_policy("mixed_float16")
            spec = ModelSpec(num_classes=data.num_classes, inputs=config.inputs, backbone=config.backbone,
                             image_size=image_size, vocab_size=tokenizer.vocab_size,
                             max_title_tokens=config.max_title_tokens,
                             embedding_dim=embeddings.shape[1] if embeddings is not None else config.embedding_dim,
                             hidden_units=config.hidden_units, dropout=config.dropout,
                             word_buckets=tokenizer.word_buckets, title_dropout=config.title_dropout,
                             image_heads=config.image_head_weight > 0)
            model = build_classifier(spec, embeddings)
            if config.weights:
                _load_backbone_weights(model, config.weights)
            checkpoint = cb.last_checkpoint(config.out) if config.resume else None
            if checkpoint is not None and workers.is_chief:
                if checkpoint.fit_splits != list(config.fit_splits):
                    # The same weights fit, but the run would train on other data part-way through.
                    raise ConfigError(
                        f"--out {config.out} holds a checkpoint trained on {' + '.join(checkpoint.fit_splits)} "
                        f"(epoch {checkpoint.epoch}); this run trains on {' + '.join(config.fit_splits)}: was "
                        "--fit-on-val switched since it was written? Pass --no-resume to start over, or use a new --out")
                with uri.local_copy(checkpoint.weights) as local:
                    try:
                        model.load_weights(local)
                    except ValueError as err:  # Keras names a layer, not the flag that changed it
                        raise ConfigError(
                            f"--out {config.out} holds a checkpoint of a different model (epoch {checkpoint.epoch}); "
                            "were model flags changed since it was written? Pass --no-resume to start over, or "
                            f"use a new --out ({str(err).splitlines()[0]})") from err
            report.resumed_from_epoch = checkpoint.epoch if checkpoint is not None else 0
            model.gradient_reducer = workers.reduce_gradients
            workers.broadcast_variables(model.weights)

        options = dict(batch_size=config.batch_size, image_size=image_size, rank=workers.rank, world=workers.size,
                       business_value_weights=config.business_value_weights, seed=config.seed + workers.rank,
                       image_heads=spec.image_heads)
        fit_splits = config.fit_splits
        train_ds = make_dataset(data, fit_splits, tokenizer, PipelineOptions(training=True, augment=config.augment, **options))
        # With --fit-on-val nothing is held out for validation: the test split is the only check.
        val_ds = None if "val" in fit_splits else make_dataset(data, "val", tokenizer, PipelineOptions(training=False, **options))
        steps = steps_per_epoch(sum(data.counts[split] for split in fit_splits), config.batch_size, workers.size)
        val_steps = None  # one process reads the validation split once
        if val_ds is not None and workers.size > 1:  # several ranks repeat it, so they need a count
            val_steps = eval_steps(data.counts["val"], config.batch_size, workers.size)
        report.fit_splits = list(fit_splits)
        peak = config.learning_rate * workers.size
        report.steps_per_epoch, report.batch_size = steps, config.batch_size
        report.global_batch_size, report.peak_learning_rate = config.batch_size * workers.size, peak
        level_weights = config.level_weights or [1.0] * data.spec.num_levels
        head_weights = {output_name(k): w for k, w in enumerate(level_weights, start=1)}
        losses = {output_name(k): SmoothedSparseCrossentropy(config.label_smoothing, logit_adjustment(
            _class_counts(data, fit_splits, k), config.logit_adjustment)) for k in range(1, data.spec.num_levels + 1)}
        if spec.image_heads:
            head_weights.update({image_head_name(k): w * config.image_head_weight
                                 for k, w in enumerate(level_weights, start=1)})
            losses.update({image_head_name(k): losses[output_name(k)] for k in range(1, data.spec.num_levels + 1)})
        heads = list(head_weights)

        sync = cb.SyncAcrossRanks(workers)
        times = cb.EpochTimes()
        callbacks: list[keras.callbacks.Callback] = [sync, cb.EpochTimer(times)]
        if workers.is_chief:
            callbacks += [cb.Checkpoint(config.out, fit_splits), cb.EpochMetricsLogger(tracker.log_metrics)]
        history: dict[str, list[float]] = {}
        start = report.resumed_from_epoch
        freeze_until = min(config.freeze_backbone_epochs, config.epochs)
        with timings.phase("fit"), _corrupt_shards_name_the_flag(config.data):
            for first, last, frozen in ((start, freeze_until, True), (max(start, freeze_until), config.epochs, False)):
                if first >= last:
                    continue
                set_backbone_trainable(model, not frozen)
                schedule = cb.WarmupCosine(config.learning_rate, peak, int(config.warmup_epochs * steps),
                                           config.epochs * steps, step_offset=first * steps)
                # With EMA, fit() ends by copying the averaged weights into the model, so the test
                # evaluation, checksums and exports all see them; SwapEMAWeights validates on them.
                model.compile(
                    optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay,
                                                     use_ema=config.ema_momentum > 0,
                                                     ema_momentum=config.ema_momentum or 0.99),
                    loss=losses,
                    loss_weights=head_weights,
                    metrics={h: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")] for h in heads},
                )
                fitted = model.fit(train_ds, epochs=last, initial_epoch=first, steps_per_epoch=steps,
                                   validation_data=val_ds,
                                   validation_steps=val_steps,
                                   callbacks=callbacks + ([keras.callbacks.SwapEMAWeights()] if config.ema_momentum else []),
                                   verbose=2 if workers.is_chief else 0)
                for key, values in fitted.history.items():
                    history.setdefault(key, []).extend(float(v) for v in values)

        epochs_trained = len(times.seconds)
        steady = times.seconds[1:] or times.seconds
        rank_rate = steps * config.batch_size * len(steady) / sum(steady) if steady else 0.0
        per_rank = workers.gather({"rank": workers.rank, "examples_per_second": rank_rate,
                                   "weights_sha256": weights_checksum(model), "last_epoch_metrics": sync.local_logs})
        if not workers.is_chief:
            return None
        report.epochs_trained = epochs_trained
        report.per_rank = per_rank
        report.examples_per_second = sum(r["examples_per_second"] for r in per_rank)
        report.final_metrics = {k: v[-1] for k, v in history.items() if v}

        with timings.phase("evaluate"), _corrupt_shards_name_the_flag(config.data):
            test_ds = make_dataset(data, "test", tokenizer, PipelineOptions(
                batch_size=config.batch_size, image_size=image_size, training=False, image_heads=spec.image_heads))
            report.test_metrics = {k: float(v) for k, v in model.evaluate(test_ds, return_dict=True, verbose=0).items()}
        with timings.phase("export"):
            _write_outputs(config, data, model, tokenizer, image_size, history, report, tracker, timings)
        tracker.end()
    except BaseException:
        if tracker is not None:
            tracker.end("FAILED")
        raise
    return report


def _class_counts(data, splits: tuple[str, ...], level: int) -> list[int]:
    """Records per class id of ``level`` in ``splits``, from the manifest (0 where it has no count:
    a split's count may be a bare total)."""
    from ecom_kfp.train.data import MANIFEST_COUNTS

    counts = data.manifest.get(MANIFEST_COUNTS, {})
    per_split = [c.get(f"level_{level}", {}) if isinstance(c := counts.get(split), dict) else {} for split in splits]
    return [sum(c.get(name, 0) for c in per_split) for name in data.vocabularies[level - 1].classes]


@contextlib.contextmanager
def _corrupt_shards_name_the_flag(data_uri: str) -> Iterator[None]:
    """Turn TensorFlow's error on a truncated or corrupt shard into one that names ``--data``."""
    import tensorflow as tf

    from ecom_kfp.train.data import DatasetError

    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        raise DatasetError(f"--data {data_uri}: a TFRecord shard is corrupt or does not match the manifest's "
                           f"feature spec ({err.message.splitlines()[0]})") from err


def _start_tracking(config: TrainConfig, report: TrainReport):
    from ecom_kfp.train.tracking import MlflowRun, resolve_tracking_uri

    local_root = config.out if not uri.is_gcs(config.out) else tempfile.mkdtemp(prefix="ecom-kfp-mlflow-")
    uri.makedirs(local_root)
    tracker = MlflowRun(resolve_tracking_uri(config.mlflow_tracking_uri, local_root), config.experiment_name, local_root)
    tracker.log_params({**asdict(config), "num_processes": report.num_processes, "image_size": report.image_size,
                        "num_classes": report.num_classes, "train_records": report.counts.get("train")})
    report.mlflow_run_id, report.mlflow_tracking_uri = tracker.run_id, tracker.tracking_uri
    return tracker


def _load_backbone_weights(model, weights_uri: str) -> None:
    from ecom_kfp.train.model import BACKBONE_LAYER

    if not uri.exists(weights_uri):
        raise ConfigError(f"--weights {weights_uri} does not exist")
    with uri.local_copy(weights_uri) as local:
        model.get_layer(BACKBONE_LAYER).load_weights(local)


def weights_checksum(model) -> str:
    """SHA-256 of all weight values: equal on every rank when training stayed in sync."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()


def _write_outputs(config, data, model, tokenizer, image_size, history, report, tracker, timings) -> None:
    """Rank 0: SavedModel, model.keras, history, labels, manifest copy, digests, report; then MLflow artifacts."""
    from ecom_kfp.contracts.digests import write_model_digests
    from ecom_kfp.train.export import export_serving
    from ecom_kfp.train.model import plain_functional

    with uri.local_output_dir(config.out) as local:
        layout = ModelLayout(local)
        export_serving(model, tokenizer, image_size, data.spec.resize_mode, data.spec.num_levels, layout.saved_model)
        plain_functional(model, data.spec.num_levels).save(layout.keras_model)
        uri.write_json(layout.history, history)
        uri.copy_tree(data.layout.labels, layout.labels)
        uri.write_json(layout.manifest, data.manifest)
        write_model_digests(layout)  # after every file it covers; consumers verify it before loading
        report.timings = dict(timings.seconds)
        started = time.perf_counter()
        tracker.log_artifacts(layout.saved_model, "saved_model")
        tracker.log_artifacts(layout.labels, "labels")
        for path in (layout.keras_model, layout.history, layout.manifest, layout.digests):
            tracker.log_artifact(path)
        report.timings["mlflow_artifacts"] = time.perf_counter() - started
        write_report(report, local)
        tracker.log_artifact(layout.report)
