"""Batch prediction throughput vs the loop a user would write, and its peak memory at two catalog sizes.

On myntra-dev products (an ingest-shaped products table whose ``image_uri`` are the local JPEGs),
in one process, with one model (the trainer's real architecture with untrained weights, exported
with the serving signature: throughput does not depend on the weights):

- **ours**: :func:`ecom_kfp.predict.run` (image reads in a thread pool, batches through the serving
  signature, calibration and thresholds, top-k, catalog agreement, Parquet row groups written);
- **user loop**: load the SavedModel, then for each product read its image and call the signature
  with that one product, and take the argmax of every level.

Both report wall-clock products/s and products per CPU-second (per core: process CPU time, so
the figure does not depend on how many cores the run got). Peak memory (``VmHWM``) of ``predict``
is measured in a fresh process at two catalog sizes (myntra-dev rows repeated under new ids).

Usage: ``python benchmarks/bench_predict.py [--products 1000] [--memory-sizes 1000,8000]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import MYNTRA, myntra_products, stdout_to_stderr  # benchmarks/ is on sys.path as a script
from train_data import myntra_dataset, untrained_serving_model

# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child started by this
# script (over 1 GB with TensorFlow and the model loaded) would report this script's peak.
PEAK_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[4])
from _common import process_status_kb
from ecom_kfp.predict import PredictConfig, run
report = run(PredictConfig(products_uri=sys.argv[1], model_uri=sys.argv[2], out_uri=sys.argv[3], progress=False))
print(json.dumps({"scored": report.scored, "peak_mb": process_status_kb("VmHWM") / 1024}))
"""


def write_products(root: Path, products: list[dict], size: int) -> str:
    """An ingest-shaped products table of ``size`` rows cycling through ``products`` under new ids."""
    from ecom_kfp import uri
    from ecom_kfp.contracts import tables
    from ecom_kfp.contracts.layouts import IngestLayout

    rows = [{**products[i % len(products)], "product_id": f"{products[i % len(products)]['product_id']}-{i}"}
            for i in range(size)]
    layout = IngestLayout(str(root))
    uri.write_parquet(tables.from_rows(rows, tables.PRODUCTS), layout.products)
    return layout.root


def timed(fn) -> tuple[int, float, float]:
    """(products, wall seconds, CPU seconds) of ``fn()``, which returns the products it scored."""
    wall, cpu = time.perf_counter(), time.process_time()
    done = fn()
    return done, time.perf_counter() - wall, time.process_time() - cpu


def user_loop(saved_model: str, products: list[dict], num_levels: int) -> int:
    """What a user writes without ``predict``: one signature call per product."""
    import numpy as np
    import tensorflow as tf

    from ecom_kfp.contracts import serving

    signature = serving.load_signature(saved_model)
    for product in products:
        with open(product["image_uri"], "rb") as fh:
            image = fh.read()
        outputs = signature(**{serving.INPUT_IMAGE: tf.constant([image]),
                               serving.INPUT_TITLE: tf.constant([product["title"]])})
        [int(np.argmax(outputs[serving.output_key(k)].numpy()[0])) for k in range(1, num_levels + 1)]
    return len(products)


def peak_memory(catalog: str, model: str, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, catalog, model, str(out), str(Path(__file__).parent)],
                          capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ecom-kfp-bench"), help="cache directory")
    parser.add_argument("--products", type=int, default=1000, help="products scored by both approaches")
    parser.add_argument("--memory-sizes", default="1000,8000", help="two catalog sizes for peak memory")
    parser.add_argument("--image-size", type=int, default=64, help="model image size")
    parser.add_argument("--dataset-limit", type=int, default=0,
                        help="build the model's dataset from the first N myntra-dev products (0: all)")
    args = parser.parse_args()
    work = Path(args.work)

    with stdout_to_stderr():
        from ecom_kfp.predict import PredictConfig, run
        from ecom_kfp.train.data import TrainingData
        from ecom_kfp.train.text import TitleTokenizer

        data = TrainingData.load(myntra_dataset(work, args.image_size, args.dataset_limit).root)
        model = untrained_serving_model(work, data, TitleTokenizer(data.layout.spm_model, 32),
                                        image_size=args.image_size)
        products = myntra_products(MYNTRA, args.products)
        catalog = write_products(work / f"bench-predict-products-{len(products)}", products, len(products))
        config = PredictConfig(products_uri=catalog, model_uri=model.root, out_uri=str(work / "bench-predict-out"),
                               progress=False)
        run(config)  # warm-up: tracing, file caches
        user_loop(model.saved_model, products[:20], data.spec.num_levels)
        ours = timed(lambda: run(config).scored)
        loop = timed(lambda: user_loop(model.saved_model, products, data.spec.num_levels))
        sizes = [int(s) for s in args.memory_sizes.split(",")]
        peaks = {}
        for size in sizes:
            sized = write_products(work / f"bench-predict-products-{size}", products, size)
            peaks[size] = peak_memory(sized, model.root, work / f"bench-predict-out-{size}")
    rate = {name: {"products": n, "products_per_second": n / wall, "products_per_cpu_second": n / cpu}
            for name, (n, wall, cpu) in (("predict", ours), ("user_loop", loop))}
    print(json.dumps({
        "benchmark": "predict_vs_user_loop", "image_size": args.image_size, "batch_size": config.batch_size,
        "cpus": os.cpu_count(), **rate,
        "ratio_products_per_second": rate["predict"]["products_per_second"] / rate["user_loop"]["products_per_second"],
        "ratio_products_per_cpu_second": (rate["predict"]["products_per_cpu_second"]
                                          / rate["user_loop"]["products_per_cpu_second"]),
        "peak_memory_mb": {str(size): round(p["peak_mb"], 1) for size, p in peaks.items()},
        "peak_memory_growth_mb": round(peaks[sizes[-1]]["peak_mb"] - peaks[sizes[0]]["peak_mb"], 1),
        "this_process_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
