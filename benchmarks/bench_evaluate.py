"""Evaluation throughput: the evaluate stage against Keras ``Model.predict``, on the myntra-dev dataset.

Measures, in one process, examples/s over the test split of
(a) the evaluate stage's inference pass (:func:`ecom_kfp.evaluate.inference.score_split`: read,
parse, then the exported serving signature with its in-graph decode/resize/tokenise and the model,
keeping the softmax), which scores exactly what is served;
(b) the alternative a user would otherwise write: load the Keras model (``model.keras``, as train
writes it), then the trainer's tf.data input pipeline (``ecom_kfp.train.data.make_dataset``: read
GZIP shards, parse, decode and resize, tokenise titles, batch) into its ``predict``: the training
graph, not the served one;
(c) that input pipeline alone (no model): the floor of any pass over the split.
(a) and (b) load their model in every pass, as an evaluation does once; (b) is also timed with the
model already in memory, its rate on a split large enough to make loading negligible. The model is
the trainer's real architecture (``build_classifier``, written as train writes it) with untrained
weights: throughput does not depend on the weights. Each figure is the median of ``--repeats``
passes, per wall second and per CPU second.

Usage: ``python benchmarks/bench_evaluate.py [--backbone small-cnn]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from train_data import myntra_dataset, untrained_serving_model  # benchmarks/ is on sys.path as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ecom-kfp-bench"), help="cache directory")
    parser.add_argument("--backbone", default="small-cnn", help="image backbone of the evaluated model")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of both passes")
    parser.add_argument("--image-size", type=int, default=64, help="stored and model image size")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes of each approach (median reported)")
    parser.add_argument("--dataset-limit", type=int, default=0,
                        help="build the model's dataset from the first N myntra-dev products (0: all)")
    args = parser.parse_args()

    import keras

    from ecom_kfp.evaluate.inference import score_split
    from ecom_kfp.evaluate.inputs import open_inputs
    from ecom_kfp.train.data import PipelineOptions, TrainingData, make_dataset
    from ecom_kfp.train.text import TitleTokenizer

    data = TrainingData.load(myntra_dataset(Path(args.work), args.image_size, args.dataset_limit).root)
    tokenizer = TitleTokenizer(data.layout.spm_model, 32)
    options = PipelineOptions(batch_size=args.batch_size, image_size=args.image_size, training=False)

    def rate(one_pass: Callable[[], int]) -> tuple[int, float, float]:
        """Examples of a pass, and the median examples per wall second and per CPU second (this process,
        all threads) of ``--repeats`` passes after a first one that traces and fills file caches. A
        pass of the myntra test split takes a second or two, so one pass alone moves with the
        machine's other work; CPU seconds do not count waiting for a core."""
        one_pass()
        wall, cpu = [], []
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            examples = one_pass()
            wall.append(examples / (time.perf_counter() - start))
            cpu.append(examples / (time.process_time() - start_cpu))
        return examples, statistics.median(wall), statistics.median(cpu)

    def dataset():
        return make_dataset(data, "test", tokenizer, options)

    def keras_predict(model) -> int:
        return len(next(iter(model.predict(dataset().map(lambda inputs, _: inputs), verbose=0).values())))

    layout = untrained_serving_model(Path(args.work), data, tokenizer, args.backbone, args.image_size)
    passes = {"train_input_pipeline": rate(lambda: sum(int(labels[next(iter(labels))].shape[0])
                                                       for _, labels in dataset())),
              "keras_predict": rate(lambda: keras_predict(keras.models.load_model(layout.keras_model)))}
    loaded = keras.models.load_model(layout.keras_model)
    passes["keras_predict_model_in_memory"] = rate(lambda: keras_predict(loaded))
    with open_inputs(layout.root, data.layout.root) as inputs:
        passes["evaluate"] = rate(lambda: score_split(inputs, "test", args.batch_size).examples)

    examples = {name: n for name, (n, _, _) in passes.items()}
    wall = {name: w for name, (_, w, _) in passes.items()}
    cpu = {name: c for name, (_, _, c) in passes.items()}
    print(json.dumps({"benchmark": "evaluate_vs_keras_predict", "backbone": args.backbone,
                      "batch_size": args.batch_size, "image_size": args.image_size, "repeats": args.repeats,
                      "examples": examples, "examples_per_second": wall, "examples_per_cpu_second": cpu,
                      "evaluate_over": {name: wall["evaluate"] / wall[name] for name in passes if name != "evaluate"},
                      "evaluate_over_per_cpu_second": {name: cpu["evaluate"] / cpu[name]
                                                       for name in passes if name != "evaluate"}}, indent=2))


if __name__ == "__main__":
    main()
