"""One rank's training run, in the four steps TFX's taxi ``run_fn`` reads as: load the data,
build the model (or resume it from a checkpoint), fit, export.

:func:`train_worker` runs them on every rank (in this process, or in each process horovodrun or
an MPIJob starts); rank 0 alone evaluates on the test split, writes the
:class:`~ecom_kfp.contracts.layouts.ModelLayout` and talks to MLflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ecom_kfp import uri
from ecom_kfp.console import progress_sink
from ecom_kfp.contracts.layouts import ModelLayout
from ecom_kfp.contracts.serving import model_branch_head, model_output
from ecom_kfp.report import Timings, write_report
from ecom_kfp.settings import ConfigError
from ecom_kfp.train.config import IMAGENET_WEIGHTS, TrainConfig
from ecom_kfp.train.data import DatasetError, PipelineOptions, TrainingData, eval_steps, make_dataset, steps_per_epoch
from ecom_kfp.train.distributed import Workers
from ecom_kfp.train.report import TrainReport
from ecom_kfp.train.text import TitleTokenizer, piece_embeddings


@dataclass(frozen=True)
class TrainingInputs:
    """What :func:`load` read: the dataset, its title tokenizer and the title embedding seed.

    Attributes:
        data: The checked tfrecord-build output.
        tokenizer: Titles -> model inputs, the same in the pipeline and the serving signature.
        embeddings: Piece embedding matrix from Doc2Vec; None for an image-only model.
        from_doc2vec: Piece rows whose vector came from Doc2Vec.
        level_weights: Loss weight of each of the dataset's levels.
    """

    data: TrainingData
    tokenizer: TitleTokenizer
    embeddings: np.ndarray | None
    from_doc2vec: int
    level_weights: list[float]


def load(config: TrainConfig) -> TrainingInputs:
    """Read and check ``--data`` and what the title branch starts from.

    Raises:
        DatasetError: ``--data`` is not a usable tfrecord-build output.
    """
    data = TrainingData.load(config.data)
    title = config.inputs != "image"
    tokenizer = TitleTokenizer(data.layout.spm_model, config.max_title_tokens, config.title_word_buckets if title else 0,
                               config.title_char_buckets if title else 0)
    embeddings, from_doc2vec = (None, 0) if config.inputs == "image" else piece_embeddings(
        data.layout, config.embedding_dim, config.seed)
    return TrainingInputs(data, tokenizer, embeddings, from_doc2vec, config.level_weights_for(data.spec.num_levels))


def build_or_resume(config: TrainConfig, inputs: TrainingInputs, workers: Workers):
    """The classifier under the current dtype policy, from ``--weights`` or the last checkpoint
    under ``--out``, with rank 0's weights on every rank.

    Returns:
        ``(model, epoch it resumes from)``.

    Raises:
        ConfigError: the checkpoint does not fit this model or these splits (naming the flags).
    """
    import ecom_kfp.train.callbacks as cb
    from ecom_kfp.train.model import ModelSpec, build_classifier

    embeddings = inputs.embeddings
    spec = ModelSpec(num_classes=inputs.data.num_classes, inputs=config.inputs, backbone=config.backbone,
                     image_size=config.image_size, vocab_size=inputs.tokenizer.vocab_size,
                     max_title_tokens=config.max_title_tokens,
                     embedding_dim=embeddings.shape[1] if embeddings is not None else config.embedding_dim,
                     hidden_units=config.hidden_units, dropout=config.dropout,
                     word_buckets=inputs.tokenizer.word_buckets, char_buckets=inputs.tokenizer.char_buckets,
                     title_dropout=config.title_dropout,
                     image_heads=config.image_head_weight > 0, fusion=config.fusion,
                     late_fusion_weight=config.late_fusion_weight)
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
    prepare_train_step(model, config, workers)
    workers.broadcast_variables(model.weights)
    return model, checkpoint.epoch if checkpoint is not None else 0


def prepare_train_step(model, config: TrainConfig, workers: Workers) -> None:
    """Give ``model``'s train step this run's gradient averaging, augmentation and XLA setting."""
    from ecom_kfp.train.augment import FlipShift

    model.gradient_reducer = workers.reduce_gradients
    # --frozen-backbone trains on features computed once: there are no images left to augment.
    if config.augment and config.inputs != "title" and not config.frozen_backbone:
        model.augmentation = FlipShift(seed=config.seed + workers.rank)
    model.use_xla(config.jit_compile)


def fit(config: TrainConfig, inputs: TrainingInputs, model, workers: Workers, report: TrainReport,
        log_metrics) -> dict[str, list[float]]:
    """Train from ``report.resumed_from_epoch`` to ``--epochs`` (frozen backbone first when asked);
    fills the schedule and throughput fields of ``report`` and returns the Keras history.

    With ``--frozen-backbone`` the backbone runs once per product before the first epoch
    (:mod:`ecom_kfp.train.frozen`) and the epochs train the layers after it on those features;
    ``model`` shares those layers, and its backbone, never trained, stays bit-identical (up to
    ``--frozen-backbone-until``'s layer, when given; the backbone's layers after it are trained).

    Args:
        log_metrics: ``log(metrics, epoch)`` on rank 0 (MLflow), None elsewhere.

    Raises:
        ConfigError: ``--frozen-backbone-until`` names no layer the backbone can be cut at.
    """
    import keras

    import ecom_kfp.train.callbacks as cb
    from ecom_kfp.train.model import feature_classifier, logit_adjustment, set_backbone_trainable

    data = inputs.data
    options = dict(batch_size=config.batch_size, image_size=config.image_size, rank=workers.rank, world=workers.size,
                   business_value_weights=config.business_value_weights, seed=config.seed + workers.rank,
                   branch_heads=config.branch_heads, deterministic=config.deterministic)
    fit_splits = config.fit_splits
    # With --fit-on-val nothing is held out for validation: the test split is the only check.
    validate = "val" not in fit_splits
    if config.frozen_backbone:
        from ecom_kfp.train.frozen import extract_features, features_dataset

        set_backbone_trainable(model, False)  # and so its BatchNorm layers in inference mode when evaluated
        cut = config.frozen_backbone_until
        try:
            trained = feature_classifier(model, cut)
        except ValueError as err:
            raise ConfigError(f"--frozen-backbone-until={cut!r}: {err}") from err
        prepare_train_step(trained, config, workers)
        with _corrupt_shards_name_the_flag(config.data):
            table = extract_features(model, data, fit_splits, inputs.tokenizer, PipelineOptions(training=False, **options),
                                     cut)
            val_table = extract_features(model, data, ["val"], inputs.tokenizer,
                                         PipelineOptions(training=False, **options), cut) if validate else None
        report.backbone_feature_seconds = table.seconds + (val_table.seconds if val_table is not None else 0.0)
        train_ds = features_dataset(table, config.batch_size, training=True, world=workers.size,
                                    seed=config.seed + workers.rank)
        val_ds = None if val_table is None else features_dataset(val_table, config.batch_size, training=False,
                                                                 world=workers.size)
    else:
        trained = model
        train_ds = make_dataset(data, fit_splits, inputs.tokenizer, PipelineOptions(training=True, **options))
        val_ds = make_dataset(data, "val", inputs.tokenizer, PipelineOptions(training=False, **options)) \
            if validate else None
    steps = steps_per_epoch(sum(data.counts[split] for split in fit_splits), config.batch_size, workers.size)
    val_steps = None  # one process reads the validation split once
    if val_ds is not None and workers.size > 1:  # several ranks repeat it, so they need a count
        val_steps = eval_steps(data.counts["val"], config.batch_size, workers.size)
    peak = config.learning_rate * workers.size
    report.fit_splits = list(fit_splits)
    report.steps_per_epoch, report.batch_size = steps, config.batch_size
    report.global_batch_size, report.peak_learning_rate = config.batch_size * workers.size, peak
    head_weights, adjustments = {}, {}
    for k, w in enumerate(inputs.level_weights, start=1):
        adjustment = logit_adjustment(_class_counts(data, fit_splits, k), config.logit_adjustment)
        if config.fusion != "late":  # late fusion's served heads only add the branches' logits
            head_weights[model_output(k)], adjustments[model_output(k)] = w, adjustment
        for branch in config.branch_heads:
            head = model_branch_head(branch, k)
            head_weights[head] = w if config.fusion == "late" else w * config.image_head_weight
            adjustments[head] = adjustment

    sync = cb.SyncAcrossRanks(workers)
    times = cb.EpochTimes()
    callbacks: list[keras.callbacks.Callback] = [sync, cb.EpochTimer(times)]
    if workers.is_chief:
        callbacks.append(cb.EpochProgress(config.epochs, data.spec.num_levels, times, progress_sink()))
    if log_metrics is not None:
        # The full model, backbone included, even when ``trained`` is its part after the backbone:
        # a resumed run loads it like any other checkpoint.
        callbacks += [cb.Checkpoint(config.out, fit_splits, model), cb.EpochMetricsLogger(log_metrics)]
    if config.ema_momentum:
        callbacks.append(keras.callbacks.SwapEMAWeights())
    history: dict[str, list[float]] = {}
    start = report.resumed_from_epoch
    freeze_until = config.epochs if config.frozen_backbone else min(config.freeze_backbone_epochs, config.epochs)
    with _corrupt_shards_name_the_flag(config.data):
        for first, last, frozen in ((start, freeze_until, True), (max(start, freeze_until), config.epochs, False)):
            if first >= last:
                continue
            if not config.frozen_backbone:  # which set its own trainable layers above
                set_backbone_trainable(model, not frozen)
            schedule = cb.WarmupCosine(config.learning_rate, peak, int(config.warmup_epochs * steps),
                                       config.epochs * steps, step_offset=first * steps)
            compile_classifier(trained, config, head_weights, schedule, adjustments)
            build_step_state(trained, train_ds.element_spec)
            fitted = trained.fit(train_ds, epochs=last, initial_epoch=first, steps_per_epoch=steps,
                                 validation_data=val_ds, validation_steps=val_steps, callbacks=callbacks,
                                 verbose=0)
            for key, values in fitted.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
    if trained is not model:
        # evaluate() runs the full model on the test images; the optimizer is never used.
        compile_classifier(model, config, head_weights, config.learning_rate, adjustments)

    steady = times.seconds[1:] or times.seconds
    rank_rate = steps * config.batch_size * len(steady) / sum(steady) if steady else 0.0
    report.per_rank = workers.gather({"rank": workers.rank, "examples_per_second": rank_rate,
                                      "weights_sha256": weights_checksum(model),
                                      "last_epoch_metrics": sync.local_logs})
    report.epochs_trained = len(times.seconds)
    report.examples_per_second = sum(r["examples_per_second"] for r in report.per_rank)
    report.final_metrics = {k: v[-1] for k, v in history.items() if v}
    return history


def compile_classifier(model, config: TrainConfig, head_weights: dict[str, float], learning_rate,
                       adjustments: dict[str, list[float] | None] | None = None) -> None:
    """Compile ``model`` for training as a run does: AdamW (with weight EMA), smoothed cross-entropy
    per head weighted by ``head_weights`` (with each head's logit adjustment from ``adjustments``,
    ``--logit-adjustment``), top-1 accuracy per output (trained by a loss or not).

    With EMA, ``fit()`` ends by copying the averaged weights into the model, so the test evaluation,
    checksums and exports all see them; ``SwapEMAWeights`` validates on them. ``jit_compile=False``:
    Keras' ``"auto"`` would put the whole step, Horovod's allreduce included, under XLA on a GPU;
    ``--jit-compile`` compiles the model's part (:meth:`ProductClassifier.use_xla`). Under
    ``mixed_float16``, ``compile`` wraps the optimizer in a ``LossScaleOptimizer``.
    """
    import keras

    from ecom_kfp.train.model import SmoothedSparseCrossentropy

    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay,
                                         use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum or 0.99),
        loss={h: SmoothedSparseCrossentropy(config.label_smoothing, (adjustments or {}).get(h)) for h in head_weights},
        loss_weights=head_weights,
        # Every output, so a late-fusion model reports its served heads' accuracy too.
        metrics={h: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")] for h in model.output_names},
        jit_compile=False,
    )


def build_step_state(model, batch) -> None:
    """Create the variables a compiled ``model``'s train and test steps update (optimizer slots,
    per-head loss trackers, metrics) before ``fit`` or ``evaluate`` traces those steps.

    Keras' TensorFlow trainer creates them up front only under a ``tf.distribute`` strategy, which
    Horovod runs without; otherwise they appear inside the first trace, and TensorFlow traces a
    function that creates variables a second time to run it. Building them first halves the
    tracing: the first step of bench_train_gpu's CPU path took 46 s -> 31 s for ResNet-50 and
    7.7 s -> 4.2 s for small-cnn. ``_symbolic_build`` is the method Keras itself calls for this.

    Args:
        batch: A batch as ``fit`` receives it, or its ``tf.data`` ``element_spec``.
    """
    model._symbolic_build(data_batch=batch)


def evaluate(config: TrainConfig, inputs: TrainingInputs, model) -> dict[str, float]:
    """Metrics of ``model`` on the whole test split (rank 0)."""
    test_ds = make_dataset(inputs.data, "test", inputs.tokenizer, PipelineOptions(
        batch_size=config.batch_size, image_size=config.image_size, training=False,
        branch_heads=config.branch_heads))
    build_step_state(model, test_ds.element_spec)
    with _corrupt_shards_name_the_flag(config.data):
        return {k: float(v) for k, v in model.evaluate(test_ds, return_dict=True, verbose=0).items()}


def export(config: TrainConfig, inputs: TrainingInputs, model, history: dict[str, list[float]],
           report: TrainReport, tracker, timings: Timings) -> None:
    """Rank 0: SavedModel, model.keras, history, labels, manifest copy, training record, digests, report; then
    MLflow artifacts."""
    from ecom_kfp.contracts.digests import write_model_digests
    from ecom_kfp.contracts.training import TrainingRecord
    from ecom_kfp.train.export import export_serving
    from ecom_kfp.train.model import plain_functional

    data = inputs.data
    with uri.local_output_dir(config.out) as local:
        layout = ModelLayout(local)
        export_serving(model, inputs.tokenizer, config.image_size, data.spec.resize_mode, data.spec.num_levels,
                       layout.saved_model)
        plain_functional(model, data.spec.num_levels).save(layout.keras_model)
        uri.write_json(layout.history, history)
        uri.copy_tree(data.layout.labels, layout.labels)
        uri.write_json(layout.manifest, data.manifest)
        TrainingRecord.of(config.fit_splits).write(layout)
        write_model_digests(layout)  # after every file it covers; consumers verify it before loading
        report.timings = dict(timings.seconds)
        started = time.perf_counter()
        tracker.log_artifacts(layout.saved_model, "saved_model")
        tracker.log_artifacts(layout.labels, "labels")
        for path in (layout.keras_model, layout.history, layout.manifest, layout.training, layout.digests):
            tracker.log_artifact(path)
        report.timings["mlflow_artifacts"] = time.perf_counter() - started
        write_report(report, local)
        tracker.log_artifact(layout.report)


def train_worker(config: TrainConfig, workers: Workers) -> TrainReport | None:
    """One rank's share of the run; rank 0 returns the report, the others ``None``."""
    import keras

    from ecom_kfp.train.precision import dtype_policy, resolve_policy

    # Seeding resets TensorFlow's eager context, which would drop the tokenizer's resource.
    keras.utils.set_random_seed(config.seed)
    timings = Timings()
    with timings.phase("load"):
        inputs = load(config)
    policy = resolve_policy(config.precision)
    report = TrainReport(data=config.data, out=config.out, backbone=config.backbone, inputs=config.inputs,
                         num_processes=workers.size, image_size=config.image_size, preset=config.preset,
                         precision=policy, jit_compile=config.jit_compile, counts=inputs.data.counts,
                         num_classes=inputs.data.num_classes, level_weights=inputs.level_weights,
                         embedding_rows_from_doc2vec=inputs.from_doc2vec)
    tracker = _start_tracking(config, report) if workers.is_chief else None
    try:
        with dtype_policy(policy):
            with timings.phase("build"):
                model, report.resumed_from_epoch = build_or_resume(config, inputs, workers)
            with timings.phase("fit"):
                history = fit(config, inputs, model, workers, report,
                              tracker.log_metrics if tracker is not None else None)
            if tracker is None:
                return None
            with timings.phase("evaluate"):
                report.test_metrics = evaluate(config, inputs, model)
            with timings.phase("export"):
                export(config, inputs, model, history, report, tracker, timings)
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

    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        raise DatasetError(f"--data {data_uri}: a TFRecord shard is corrupt or does not match the manifest's "
                           f"feature spec ({err.message.splitlines()[0]})") from err


def _start_tracking(config: TrainConfig, report: TrainReport):
    from ecom_kfp.train.tracking import MlflowRun, resolve_tracking_uri

    tracking_uri = resolve_tracking_uri(config.mlflow_tracking_uri, config.out)
    uri.makedirs(config.out)
    tracker = MlflowRun(tracking_uri, config.experiment_name)
    params: dict[str, Any] = {**asdict(config), "num_processes": report.num_processes, "precision": report.precision,
                              "precision_setting": config.precision, "num_classes": report.num_classes,
                              "applied_level_weights": report.level_weights,
                              "train_records": report.counts.get("train")}
    tracker.log_params(params)
    report.mlflow_run_id, report.mlflow_tracking_uri = tracker.run_id, tracker.tracking_uri
    return tracker


def _load_backbone_weights(model, weights_uri: str) -> None:
    from ecom_kfp.train.model import BACKBONE_LAYER

    if weights_uri == IMAGENET_WEIGHTS:
        from ecom_kfp.train.pretrained import load_lite0_imagenet

        load_lite0_imagenet(model.get_layer(BACKBONE_LAYER))
        return
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
