"""Input pipeline vs train step: which one bounds training on this machine?

Measures, in one process, examples/s of (a) the tf.data pipeline alone (read GZIP shards, batch,
parse, decode JPEGs, tokenise titles) and (b) the model's train step on synthetic in-memory
batches of the same shape (augmentation runs there, in the step). The smaller figure bounds
training; the ratio says by how much.

Usage: ``python benchmarks/bench_train_input.py [--backbone small-cnn]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from train_data import myntra_dataset  # benchmarks/ is on sys.path when run as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ecom-kfp-bench"), help="cache directory")
    parser.add_argument("--backbone", default="small-cnn", help="image backbone")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--image-size", type=int, default=64, help="stored and model image size")
    parser.add_argument("--steps", type=int, default=40, help="timed batches per measurement")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from ecom_kfp.contracts.serving import model_output
    from ecom_kfp.train.augment import FlipShift
    from ecom_kfp.train.data import PipelineOptions, TrainingData, make_dataset
    from ecom_kfp.train.model import ModelSpec, build_classifier
    from ecom_kfp.train.text import TitleTokenizer

    data = TrainingData.load(myntra_dataset(Path(args.work), args.image_size).root)
    tokenizer = TitleTokenizer(data.layout.spm_model, 32)
    pipeline = make_dataset(data, "train", tokenizer, PipelineOptions(batch_size=args.batch_size,
                                                                      image_size=args.image_size, training=True))
    iterator = iter(pipeline)
    for _ in range(5):  # warm-up: autotune, file opening
        batch = next(iterator)
    start = time.perf_counter()
    for _ in range(args.steps):
        next(iterator)
    pipeline_rate = args.steps * args.batch_size / (time.perf_counter() - start)

    model = build_classifier(ModelSpec(data.num_classes, "fused", args.backbone, args.image_size, tokenizer.vocab_size, 32, 64))
    model.augmentation = FlipShift(seed=0)
    heads = [model_output(k) for k in range(1, data.spec.num_levels + 1)]
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss={h: keras.losses.SparseCategoricalCrossentropy() for h in heads})
    x, y = batch
    synthetic = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(synthetic, steps_per_epoch=5, epochs=1, verbose=0)  # trace the train step
    start = time.perf_counter()
    model.fit(synthetic, steps_per_epoch=args.steps, epochs=1, verbose=0)
    step_rate = args.steps * args.batch_size / (time.perf_counter() - start)
    print(json.dumps({"benchmark": "train_input_vs_step", "backbone": args.backbone, "batch_size": args.batch_size,
                      "image_size": args.image_size, "input_pipeline_examples_per_second": pipeline_rate,
                      "train_step_examples_per_second": step_rate, "pipeline_over_step": pipeline_rate / step_rate,
                      "bound_by": "input pipeline" if pipeline_rate < step_rate else "train step"}, indent=2))


if __name__ == "__main__":
    main()
