"""Read side: decoded, augmented training examples/s the trainer's input pipeline gets from our shards.

Builds a dataset from ``../shared/data/myntra-dev`` with :func:`ecom_kfp.tfrecord_build.run`, then times,
in the same run:

- ``training_pipeline``: :func:`ecom_kfp.train.data.make_dataset` (interleaved GZIP reads, parse,
  decode + resize, shuffle, batch, keras-cv flip/translate augmentation, tensorflow-text
  tokenisation of titles), with TensorFlow's default thread pool and with a one-thread pool
  (``private_threadpool_size=1``, i.e. per core);
- ``read_parse_limit``: the same shards read and parsed only (no image decode, no augmentation),
  the I/O + parse ceiling.

Usage: ``python benchmarks/bench_input_pipeline.py [--myntra DIR] [--records N] [--batches N]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import add_myntra_flag, myntra_products, write_deduped_products  # noqa: E402

from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run  # noqa: E402

BATCH = 64
WARMUP_BATCHES = 3


def examples_per_second(dataset, batches: int, batch_size: int) -> float:
    iterator = iter(dataset)
    for _ in range(WARMUP_BATCHES):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def one_thread(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_myntra_flag(parser)
    parser.add_argument("--records", type=int, default=1500, help="products to build the shards from")
    parser.add_argument("--batches", type=int, default=20, help="batches of 64 timed per measurement")
    parser.add_argument("--image-size", type=int, default=224, help="stored and model image size")
    args = parser.parse_args()

    import tensorflow as tf

    from ecom_kfp.train.data import PipelineOptions, TrainingData, make_dataset
    from ecom_kfp.train.text import TitleTokenizer

    with tempfile.TemporaryDirectory(prefix="bench-input-") as tmp:
        inputs = write_deduped_products(myntra_products(args.myntra, args.records), Path(tmp) / "in")
        out = str(Path(tmp) / "dataset")
        run(TFRecordBuildConfig(products=inputs.root, out=out, image_size=args.image_size, workers=1, shard_target_mb=2.0,
                        min_class_count=2, progress=False))
        data = TrainingData.load(out)
        tokenizer = TitleTokenizer(data.layout.spm_model, max_tokens=32)
        options = PipelineOptions(batch_size=BATCH, image_size=args.image_size, training=True)
        pipeline = make_dataset(data, "train", tokenizer, options)
        parse_only = (tf.data.TFRecordDataset(data.shards("train"), compression_type="GZIP").repeat()
                      .batch(BATCH).map(data.spec.parse).prefetch(tf.data.AUTOTUNE))
        default_threads = examples_per_second(pipeline, args.batches, BATCH)
        single = examples_per_second(one_thread(make_dataset(data, "train", tokenizer, options)), args.batches, BATCH)
        parse_single = examples_per_second(one_thread(parse_only), args.batches, BATCH)
    cpus = os.cpu_count() or 1
    print(json.dumps({
        "cpu_count": cpus, "records_in_train": data.counts["train"], "image_size": args.image_size, "batch_size": BATCH,
        "examples_per_second": {"training_pipeline_all_cores": round(default_threads, 1),
                                "training_pipeline_one_thread": round(single, 1),
                                "read_parse_limit_one_thread": round(parse_single, 1)},
        "examples_per_second_per_core": round(default_threads / cpus, 1),
        "ratios": {"all_cores_vs_one_thread": round(default_threads / single, 2),
                   "pipeline_vs_read_parse_limit_one_thread": round(single / parse_single, 3)},
    }, indent=2))


if __name__ == "__main__":
    main()
