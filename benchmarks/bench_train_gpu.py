"""Train-step throughput per GPU of each backbone, beside NVIDIA's published reference figures.

Synthetic 224 px batches (uint8 images, title tokens and word hashes, labels of three levels) go
through the real training step: :func:`ecom_kfp.train.model.build_classifier` as a fused model,
:func:`ecom_kfp.train.trainer.prepare_train_step` (Horovod gradient averaging, batched
augmentation, ``--jit-compile``) and :func:`ecom_kfp.train.trainer.compile_classifier` (AdamW with
EMA, smoothed cross-entropy), under ``--precision`` (``auto``: bfloat16 from compute capability 8.0,
float16 with loss scaling below). Under ``horovodrun -np N`` every rank measures its own GPU and
rank 0 prints the mean.

The references are NVIDIA DeepLearningExamples' training throughput on one A100 80 GB with mixed
precision: EfficientNet-B0 (TensorFlow 2) 3,454 img/s, ResNet-50 v1.5 (TensorFlow 1) 2,375 img/s.
Our ``efficientnetv2-b0`` is EfficientNetV2-B0, not B0, plus a title branch and three heads, so
the ratio says how far we are from a well-tuned pipeline, not a like-for-like score.

Without a GPU it prints a message and a JSON document saying it skipped, and exits 0;
``--allow-cpu`` runs it on the CPU anyway (for tests; the figures mean nothing for a GPU).

Each backbone also reports ``warmup_seconds``: building the model, tracing the train step and the
warm-up steps. ``--compare-keras-build`` times that a second time the way a plain Keras loop runs
it without a ``tf.distribute`` strategy (the step's variables created inside its first trace, which
TensorFlow then traces again) and prints the ratio.

Usage: ``python benchmarks/bench_train_gpu.py [--backbones efficientnetv2-b0,resnet50]
[--precision auto] [--jit-compile] [--batch-size 128] [--steps 50] [--compare-keras-build]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import stdout_to_stderr  # noqa: E402

#: backbone -> (reference model and setting, images/s on one A100 with mixed precision).
REFERENCES = {
    "efficientnetv2-b0": ("EfficientNet-B0, TF2, A100 80GB, AMP (NVIDIA DeepLearningExamples)", 3454.0),
    "resnet50": ("ResNet-50 v1.5, TF1, A100 80GB, AMP (NVIDIA DeepLearningExamples)", 2375.0),
}
LEVELS = (4, 20, 60)
TITLE_TOKENS = 32
VOCABULARY = 8000


def synthetic_batches(batch_size: int, image_size: int, word_buckets: int, char_buckets: int):
    """One batch shaped as the input pipeline delivers it, repeated (host memory, copied each step)."""
    import numpy as np
    import tensorflow as tf

    from ecom_kfp.contracts import serving
    from ecom_kfp.train.text import MAX_CHAR_GRAMS

    rng = np.random.default_rng(0)
    x = {serving.MODEL_IMAGE_INPUT: rng.integers(0, 256, (batch_size, image_size, image_size, 3), dtype=np.uint8),
         serving.MODEL_TITLE_INPUT: rng.integers(1, VOCABULARY, (batch_size, TITLE_TOKENS), dtype=np.int32)}
    for name, buckets, length in ((serving.MODEL_TITLE_WORDS_INPUT, word_buckets, TITLE_TOKENS),
                                  (serving.MODEL_TITLE_CHARS_INPUT, char_buckets, MAX_CHAR_GRAMS)):
        if buckets:
            x[name] = rng.integers(1, buckets + 1, (batch_size, length), dtype=np.int32)
    y = {serving.model_output(level): rng.integers(0, classes, batch_size)
         for level, classes in enumerate(LEVELS, start=1)}
    return tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(2)


def images_per_second(config, workers, warmup: int, steps: int, prebuild: bool = True) -> tuple[float, float]:
    """Train steps/s of ``config.backbone`` on this rank's device, times the batch size, and the
    seconds from building the model to the end of the warm-up steps (mostly tracing the step).

    Args:
        prebuild: Create the step's variables before the first trace, as ``train`` does
            (:func:`ecom_kfp.train.trainer.build_step_state`); False leaves it to Keras.
    """
    from ecom_kfp.contracts.serving import model_output
    from ecom_kfp.train.model import ModelSpec, build_classifier
    from ecom_kfp.train.precision import dtype_policy, resolve_policy
    from ecom_kfp.train.trainer import build_step_state, compile_classifier, prepare_train_step

    start = time.perf_counter()
    with dtype_policy(resolve_policy(config.precision)):
        model = build_classifier(ModelSpec(list(LEVELS), "fused", config.backbone, config.image_size, VOCABULARY,
                                           TITLE_TOKENS, config.embedding_dim, config.hidden_units, config.dropout,
                                           config.title_word_buckets, char_buckets=config.title_char_buckets))
        prepare_train_step(model, config, workers)
        workers.broadcast_variables(model.weights)
        weights = config.level_weights_for(len(LEVELS))
        compile_classifier(model, config, {model_output(k): w for k, w in enumerate(weights, start=1)},
                           config.learning_rate)
        batches = synthetic_batches(config.batch_size, config.image_size, config.title_word_buckets,
                                    config.title_char_buckets)
        if prebuild:
            build_step_state(model, batches.element_spec)
        model.fit(batches, steps_per_epoch=warmup, epochs=1, verbose=0)  # tracing, autotuning
        ready = time.perf_counter()
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps * config.batch_size / (time.perf_counter() - ready), ready - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default=",".join(REFERENCES), help="comma-separated backbone names")
    parser.add_argument("--precision", default="auto", help="auto, float32, mixed_float16 or mixed_bfloat16")
    parser.add_argument("--jit-compile", action="store_true", help="XLA for the forward and backward pass")
    parser.add_argument("--batch-size", type=int, default=0, help="per GPU; 0 = the gpu preset's")
    parser.add_argument("--image-size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per backbone")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first (graph tracing)")
    parser.add_argument("--compare-keras-build", action="store_true",
                        help="also time the warm-up with Keras creating the step's variables inside its first trace "
                             "(what it does without a tf.distribute strategy), and print the ratio")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (tests; figures mean nothing)")
    args = parser.parse_args()

    import tensorflow as tf

    from ecom_kfp.train.config import TrainConfig
    from ecom_kfp.train.distributed import init_workers
    from ecom_kfp.train.precision import resolve_policy

    workers = init_workers()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        print("bench_train_gpu: no GPU visible to TensorFlow; nothing to measure (--allow-cpu runs it on the CPU)",
              file=sys.stderr)
        print(json.dumps({"benchmark": "train_gpu", "skipped": "no GPU"}))
        return 0
    results = {}
    for backbone in args.backbones.split(","):
        config = TrainConfig(data="synthetic", out="unused", preset="gpu", backbone=backbone, precision=args.precision,
                             jit_compile=args.jit_compile, batch_size=args.batch_size, image_size=args.image_size)
        with stdout_to_stderr():
            rate, warmup_seconds = images_per_second(config, workers, args.warmup_steps, args.steps)
        per_gpu = sum(workers.gather(rate)) / workers.size
        reference, figure = REFERENCES.get(backbone, ("", 0.0))
        warmup_seconds = max(workers.gather(warmup_seconds))
        results[backbone] = {"images_per_second_per_gpu": round(per_gpu, 1),
                             "warmup_seconds": round(warmup_seconds, 1), "reference": reference,
                             "reference_images_per_second": figure,
                             "ratio_to_reference": round(per_gpu / figure, 3) if figure else None}
        if args.compare_keras_build:
            with stdout_to_stderr():
                _, keras_seconds = images_per_second(config, workers, args.warmup_steps, 1, prebuild=False)
            keras_seconds = max(workers.gather(keras_seconds))
            results[backbone]["warmup_seconds_keras_build"] = round(keras_seconds, 1)
            results[backbone]["warmup_ratio_to_keras_build"] = round(warmup_seconds / keras_seconds, 3)
    if workers.is_chief:
        print(json.dumps({
            "benchmark": "train_gpu", "device": gpus[0].name if gpus else "CPU", "gpus_per_rank": len(gpus),
            "ranks": workers.size, "precision": resolve_policy(args.precision), "jit_compile": args.jit_compile,
            "batch_size_per_gpu": config.batch_size, "image_size": args.image_size, "steps": args.steps,
            "backbones": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
