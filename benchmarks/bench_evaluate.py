"""Evaluation throughput vs the trainer's input pipeline, on the myntra-dev dataset.

Measures, in one process, examples/s of (a) the trainer's tf.data input pipeline alone over the
test split (``ecom_kfp.train.data.make_dataset``: read GZIP shards, parse, decode and resize,
tokenise titles, batch; no training) and (b) the evaluate stage's inference pass over the same
split (:func:`ecom_kfp.evaluate.inference.score_split`: read, parse, then the exported
serving signature with its in-graph decode/resize/tokenise and the model, keeping the softmax).
The model is the trainer's real architecture (``build_classifier`` + ``export_serving``) with
untrained weights: throughput does not depend on the weights. The ratio
says how much the serving-signature path costs over just feeding the data.

Usage: ``python benchmarks/bench_evaluate.py [--backbone small-cnn]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from train_data import myntra_dataset, untrained_serving_model  # benchmarks/ is on sys.path as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ecom-kfp-bench"), help="cache directory")
    parser.add_argument("--backbone", default="small-cnn", help="image backbone of the evaluated model")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of both passes")
    parser.add_argument("--image-size", type=int, default=64, help="stored and model image size")
    args = parser.parse_args()

    from ecom_kfp.evaluate.inference import score_split
    from ecom_kfp.evaluate.inputs import open_inputs
    from ecom_kfp.train.data import PipelineOptions, TrainingData, make_dataset
    from ecom_kfp.train.text import TitleTokenizer

    data = TrainingData.load(myntra_dataset(Path(args.work), args.image_size).root)
    tokenizer = TitleTokenizer(data.layout.spm_model, 32)
    options = PipelineOptions(batch_size=args.batch_size, image_size=args.image_size, training=False)

    def one_pass() -> int:
        return sum(int(labels[next(iter(labels))].shape[0]) for _, labels in make_dataset(data, "test", tokenizer, options))

    one_pass()  # warm-up, as for the evaluation pass: tracing, file caches
    start = time.perf_counter()
    pipeline_examples = one_pass()
    pipeline_rate = pipeline_examples / (time.perf_counter() - start)

    layout = untrained_serving_model(Path(args.work), data, tokenizer, args.backbone, args.image_size)
    with open_inputs(layout.root, data.layout.root) as inputs:
        score_split(inputs, "test", args.batch_size)  # warm-up: trace the signature, fill caches
        predictions = score_split(inputs, "test", args.batch_size)
    evaluate_rate = predictions.examples / predictions.seconds

    print(json.dumps({"benchmark": "evaluate_vs_train_input_pipeline", "backbone": args.backbone,
                      "batch_size": args.batch_size, "image_size": args.image_size,
                      "test_examples": predictions.examples, "pipeline_examples": pipeline_examples,
                      "train_input_pipeline_examples_per_second": pipeline_rate,
                      "evaluate_examples_per_second": evaluate_rate,
                      "evaluate_over_input_pipeline": evaluate_rate / pipeline_rate}, indent=2))


if __name__ == "__main__":
    main()
