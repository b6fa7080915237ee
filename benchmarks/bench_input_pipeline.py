"""Read side: examples/s per core the trainer's input pipeline delivers, against the decode-only limit.

Builds (once, cached under ``--work``) a dataset of myntra-dev products at ``--image-size`` with
:func:`ecom_kfp.tfrecord_build.run`, then times in the same run, each on a one-thread pool
(``private_threadpool_size=1``, i.e. per core):

- ``training_pipeline``: :func:`ecom_kfp.train.data.make_dataset` as training uses it (GZIP reads,
  shuffle, batch, parse, JPEG decode, title tokenisation with the default word buckets, and
  whatever image work the pipeline does on the CPU);
- ``decode_only``: read + parse + ``tf.io.decode_jpeg`` of the same stored images, batched, the
  most any pipeline that decodes every image on the CPU can deliver.

Both are measured ``--repeats`` times, alternating, because the machine's cores are shared; the
ratio is taken within each repeat. The goal (issue 23): >= 1,000 examples/s per core at 224 px and
>= 0.33 of the decode-only limit, so about 12 cores feed one fast GPU.

Usage: ``python benchmarks/bench_input_pipeline.py [--records N] [--batches N] [--repeats N]``
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

from ecom_kfp import uri  # noqa: E402
from ecom_kfp.contracts.layouts import DatasetLayout  # noqa: E402
from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run  # noqa: E402

BATCH = 64
WARMUP_BATCHES = 3
GOAL_PER_CORE = 1000.0
GOAL_RATIO = 0.33
#: The training stage's default, so the pipeline hashes title words as training does.
WORD_BUCKETS = 32768
MAX_TITLE_TOKENS = 32


def examples_per_second(dataset, batches: int, batch_size: int) -> float:
    """Batches/s after a warm-up (file opening, autotune), times the batch size."""
    iterator = iter(dataset)
    for _ in range(WARMUP_BATCHES):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def one_thread(dataset):
    """``dataset`` on a private one-thread pool: the figure per core."""
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def decode_only(data):
    """Read, parse and ``decode_jpeg`` the stored images of ``train``, batched: the CPU's limit."""
    import tensorflow as tf

    from ecom_kfp.contracts import features

    def decode(records):
        parsed = data.spec.parse(records)
        return tf.map_fn(lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3), parsed[features.IMAGE],
                         fn_output_signature=tf.uint8)

    return (tf.data.TFRecordDataset(data.shards("train"), compression_type="GZIP").repeat()
            .batch(BATCH, drop_remainder=True).map(decode).prefetch(tf.data.AUTOTUNE))


def build_dataset(work: Path, myntra: Path, records: int, image_size: int) -> str:
    """The benchmark's dataset under ``work`` (built on first use)."""
    root = work / f"input-{image_size}-{records}"
    layout = DatasetLayout(str(root / "dataset"))
    if not uri.exists(layout.manifest):
        inputs = write_deduped_products(myntra_products(myntra, records), root / "in")
        run(TFRecordBuildConfig(products=inputs.root, out=layout.root, image_size=image_size, workers=1,
                                shard_target_mb=2.0, min_class_count=2, progress=False))
    return layout.root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_myntra_flag(parser)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ecom-kfp-bench",
                        help="cache directory for the built dataset")
    parser.add_argument("--records", type=int, default=1500, help="products to build the shards from")
    parser.add_argument("--batches", type=int, default=30, help="batches of 64 timed per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="alternating measurements of both")
    parser.add_argument("--image-size", type=int, default=224, help="stored and model image size")
    args = parser.parse_args()

    from ecom_kfp.train.data import PipelineOptions, TrainingData, make_dataset
    from ecom_kfp.train.text import TitleTokenizer

    data = TrainingData.load(build_dataset(args.work, args.myntra, args.records, args.image_size))
    tokenizer = TitleTokenizer(data.layout.spm_model, MAX_TITLE_TOKENS, WORD_BUCKETS)
    options = PipelineOptions(batch_size=BATCH, image_size=args.image_size, training=True)
    repeats = []
    for _ in range(args.repeats):
        pipeline = examples_per_second(one_thread(make_dataset(data, "train", tokenizer, options)), args.batches, BATCH)
        limit = examples_per_second(one_thread(decode_only(data)), args.batches, BATCH)
        repeats.append({"training_pipeline_per_core": round(pipeline, 1), "decode_only_per_core": round(limit, 1),
                        "ratio": round(pipeline / limit, 3)})
    best = max(r["training_pipeline_per_core"] for r in repeats)
    worst_ratio = min(r["ratio"] for r in repeats)
    print(json.dumps({
        "benchmark": "input_pipeline", "cpu_count": os.cpu_count(), "records_in_train": data.counts["train"],
        "image_size": args.image_size, "batch_size": BATCH, "word_buckets": WORD_BUCKETS,
        "examples_per_second": repeats,
        "goals": {"per_core": GOAL_PER_CORE, "ratio": GOAL_RATIO},
        "meets_goals": all(r["training_pipeline_per_core"] >= GOAL_PER_CORE and r["ratio"] >= GOAL_RATIO
                           for r in repeats),
        "best_per_core": best, "lowest_ratio": worst_ratio,
    }, indent=2))


if __name__ == "__main__":
    main()
