"""Evaluation throughput: the evaluate stage against Keras ``Model.predict``, on the myntra-dev dataset.

Measures, in one process, examples/s over the test split of
(a) the evaluate stage's inference pass (:func:`ecom_kfp.evaluate.inference.score_split`: read,
parse, then the exported serving signature with its in-graph decode/resize/tokenise and the model,
keeping the softmax), which scores exactly what is served;
(b) the alternative a user would otherwise write: the trainer's tf.data input pipeline
(``ecom_kfp.train.data.make_dataset``: read GZIP shards, parse, decode and resize, tokenise titles,
batch) into the Keras model's ``predict``, which scores the training graph, not the served one;
(c) that input pipeline alone (no model): the floor of any pass over the split.
The model is the trainer's real architecture (``build_classifier``; exported with
``export_serving`` for (a)) with untrained weights: throughput does not depend on the weights.

Usage: ``python benchmarks/bench_evaluate.py [--backbone small-cnn]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from train_data import myntra_dataset, untrained_classifier, untrained_serving_model  # benchmarks/ is on sys.path as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ecom-kfp-bench"), help="cache directory")
    parser.add_argument("--backbone", default="small-cnn", help="image backbone of the evaluated model")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of both passes")
    parser.add_argument("--image-size", type=int, default=64, help="stored and model image size")
    parser.add_argument("--dataset-limit", type=int, default=0,
                        help="build the model's dataset from the first N myntra-dev products (0: all)")
    args = parser.parse_args()

    from ecom_kfp.evaluate.inference import score_split
    from ecom_kfp.evaluate.inputs import open_inputs
    from ecom_kfp.train.data import PipelineOptions, TrainingData, make_dataset
    from ecom_kfp.train.text import TitleTokenizer

    data = TrainingData.load(myntra_dataset(Path(args.work), args.image_size, args.dataset_limit).root)
    tokenizer = TitleTokenizer(data.layout.spm_model, 32)
    options = PipelineOptions(batch_size=args.batch_size, image_size=args.image_size, training=False)

    def rate(one_pass: Callable[[], int]) -> tuple[int, float]:
        """Examples and examples/s of the second of two passes (the first traces and fills file caches)."""
        one_pass()
        start = time.perf_counter()
        examples = one_pass()
        return examples, examples / (time.perf_counter() - start)

    def dataset():
        return make_dataset(data, "test", tokenizer, options)

    pipeline_examples, pipeline_rate = rate(
        lambda: sum(int(labels[next(iter(labels))].shape[0]) for _, labels in dataset()))
    model = untrained_classifier(data, tokenizer, args.backbone, args.image_size)
    keras_examples, keras_rate = rate(
        lambda: len(next(iter(model.predict(dataset().map(lambda inputs, _: inputs), verbose=0).values()))))

    layout = untrained_serving_model(Path(args.work), data, tokenizer, args.backbone, args.image_size)
    with open_inputs(layout.root, data.layout.root) as inputs:
        score_split(inputs, "test", args.batch_size)  # warm-up: trace the signature, fill caches
        predictions = score_split(inputs, "test", args.batch_size)
    evaluate_rate = predictions.examples / predictions.seconds

    print(json.dumps({"benchmark": "evaluate_vs_keras_predict", "backbone": args.backbone,
                      "batch_size": args.batch_size, "image_size": args.image_size,
                      "test_examples": predictions.examples, "pipeline_examples": pipeline_examples,
                      "train_input_pipeline_examples_per_second": pipeline_rate,
                      "keras_predict_examples": keras_examples,
                      "keras_predict_examples_per_second": keras_rate,
                      "evaluate_examples_per_second": evaluate_rate,
                      "evaluate_over_keras_predict": evaluate_rate / keras_rate,
                      "evaluate_over_input_pipeline": evaluate_rate / pipeline_rate}, indent=2))


if __name__ == "__main__":
    main()
