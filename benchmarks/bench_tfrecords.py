"""Records/s per core of the TFRecord writer against a plain TensorFlow loop and Pillow's own limit.

Measured in one run, on the same images, one process each (so figures are per core):

- ``ours``: :func:`ecom_kfp.dataset.writer.write_shard` (read, decode, resize, JPEG encode, Doc2Vec
  inference, ``FeatureSpec.serialize``, GZIP write), TensorFlow already imported.
- ``tf_loop``: the same records written by a plain loop, one example at a time:
  ``tf.io.decode_jpeg`` -> ``tf.image.resize_with_pad`` -> ``tf.io.encode_jpeg`` -> ``tf.train.Example``.
- ``pillow_limit``: Pillow decode + :func:`resize_pil` + JPEG encode from bytes in memory, nothing
  else (the practical limit); ``pillow_draft_limit`` the same with libjpeg DCT scaling, which ours uses.

Then the whole stage (:func:`ecom_kfp.dataset.run`) with one writer process per CPU, for scaling.
Data sets: ``../shared/data/myntra-dev`` (60x80 JPEGs) and generated 800x800 JPEGs resized to 224.
Prints one JSON document.

Usage: ``python benchmarks/bench_tfrecords.py [--myntra DIR] [--records N] [--large N]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from _common import add_myntra_flag, myntra_products, write_deduped_products  # noqa: E402

from ecom_kfp import uri  # noqa: E402
from ecom_kfp.contracts.features import FeatureSpec, resize_pil  # noqa: E402
from ecom_kfp.contracts.layouts import DatasetLayout  # noqa: E402
from ecom_kfp.dataset import BuildConfig, run  # noqa: E402
from ecom_kfp.dataset.text import save_doc2vec, sentencepiece_processor, train_doc2vec, train_sentencepiece  # noqa: E402
from ecom_kfp.dataset.writer import RecordInput, ShardTask, WriterSettings, init_worker, write_shard  # noqa: E402

QUALITY = 90


def large_products(root: Path, count: int, titles: list[str]) -> list[dict]:
    """800x800 JPEGs with shapes, gradients and sensor-like noise (compress like product photos)."""
    rng = random.Random(0)
    noise_rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    products = []
    for i in range(count):
        image = Image.new("RGB", (800, 800), (250, 250, 250))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.randrange(600), rng.randrange(600)
            draw.ellipse([x, y, x + rng.randrange(80, 200), y + rng.randrange(80, 200)],
                         fill=tuple(rng.randrange(256) for _ in range(3)))
        pixels = np.asarray(image, dtype=np.int16) + noise_rng.integers(-6, 7, size=(800, 800, 3))
        path = root / f"large-{i}.jpg"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, format="JPEG", quality=92)
        products.append({"product_id": f"large-{i}", "title": titles[i % len(titles)],
                         "category_path": ["A", "B"], "image_uri": str(path)})
    return products


def text_settings(products: list[dict], root: Path, spec: FeatureSpec) -> WriterSettings:
    titles = [p["title"] for p in products]
    model = train_sentencepiece(titles, 8000, seed=0).model
    root.mkdir(parents=True, exist_ok=True)
    spm_path = root / "spm.model"
    spm_path.write_bytes(model)
    pieces = sentencepiece_processor(model).encode(titles, out_type=str)
    d2v_path = str(root / "doc2vec.model")
    save_doc2vec(train_doc2vec(list(zip((p["product_id"] for p in products), pieces)), spec.title_vector_dim, 20, 0),
                 d2v_path)
    return WriterSettings(spec, QUALITY, str(spm_path), d2v_path, seed=0)


def bench_ours(products: list[dict], settings: WriterSettings, root: Path) -> float:
    records = tuple(RecordInput(p["product_id"], p["title"], p["image_uri"], (1,) * settings.spec.num_levels,
                                (None,) * settings.spec.num_levels, 1.0, p["product_id"]) for p in products)
    init_worker(settings)
    layout = DatasetLayout(str(root / "ours"))
    write_shard(ShardTask("train", 0, 1, layout.shard("train", 0, 1), records[:8]))  # warm-up: TF, gensim
    start = time.perf_counter()
    result = write_shard(ShardTask("train", 0, 1, layout.shard("train", 0, 1), records))
    elapsed = time.perf_counter() - start
    assert result.records == len(records), result.rejects[:3]
    return len(records) / elapsed


def bench_tf_loop(products: list[dict], size: int, root: Path) -> float:
    import tensorflow as tf

    def one(data: bytes, writer) -> None:
        image = tf.io.decode_jpeg(data, channels=3)
        image = tf.image.resize_with_pad(tf.cast(image, tf.float32), size, size)
        jpeg = tf.io.encode_jpeg(tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8), quality=QUALITY).numpy()
        feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg]))}
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())

    target = str(root / "tf_loop.tfrecord.gz")
    with tf.io.TFRecordWriter(target, "GZIP") as writer:
        for p in products[:8]:
            one(uri.read_bytes(p["image_uri"]), writer)
        start = time.perf_counter()
        for p in products:
            one(uri.read_bytes(p["image_uri"]), writer)
        return len(products) / (time.perf_counter() - start)


def bench_pillow(products: list[dict], size: int, draft: bool) -> float:
    blobs = [uri.read_bytes(p["image_uri"]) for p in products]
    start = time.perf_counter()
    for data in blobs:
        image = Image.open(io.BytesIO(data))
        if draft:
            image.draft("RGB", (size, size))
        out = io.BytesIO()
        resize_pil(image, size, "pad").save(out, format="JPEG", quality=QUALITY)
    return len(blobs) / (time.perf_counter() - start)


def bench_stage(products: list[dict], size: int, root: Path, workers: int, target_mb: float) -> dict:
    inputs = write_deduped_products(products, root / f"in-{workers}")
    report = run(BuildConfig(products=inputs.root, out=str(root / f"stage-{workers}"), image_size=size, workers=workers,
                             shard_target_mb=target_mb, min_class_count=1, doc2vec_dim=64, progress=False))
    return {"workers": workers, "records": report.records, "write_records_per_second": round(report.records_per_second, 1),
            "write_records_per_second_per_worker": round(report.records_per_second / workers, 1),
            "records_per_process_second": round(report.records_per_process_second, 1),
            "seconds": {k: round(v, 2) for k, v in report.seconds.items()}}


def bench_set(name: str, products: list[dict], size: int, root: Path, target_mb: float) -> dict:
    spec = FeatureSpec(num_levels=3, title_vector_dim=64, image_size=size)
    settings = text_settings(products, root, spec)
    ours = bench_ours(products, settings, root)
    tf_loop = bench_tf_loop(products, size, root)
    pillow = bench_pillow(products, size, draft=False)
    pillow_draft = bench_pillow(products, size, draft=True)
    workers = os.cpu_count() or 1
    stages = [bench_stage(products, size, root, 1, target_mb)]
    if workers > 1:
        stages.append(bench_stage(products, size, root, workers, target_mb))
    return {
        "data": name, "records": len(products), "image_size": size,
        "records_per_second_per_core": {"ours": round(ours, 1), "tf_loop": round(tf_loop, 1),
                                        "pillow_limit": round(pillow, 1), "pillow_draft_limit": round(pillow_draft, 1)},
        "ratios": {"ours_vs_tf_loop": round(ours / tf_loop, 2), "ours_vs_pillow_limit": round(ours / pillow, 2),
                   "ours_vs_pillow_draft_limit": round(ours / pillow_draft, 2)},
        "stage": stages,
        # Wall-clock write rate of N workers over one worker (includes spawning processes and importing TF).
        "stage_scaling": round(stages[-1]["write_records_per_second"] / stages[0]["write_records_per_second"], 2)
        if len(stages) > 1 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_myntra_flag(parser)
    parser.add_argument("--records", type=int, default=2000, help="Myntra products to write")
    parser.add_argument("--large", type=int, default=200, help="generated 800x800 images to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tfrecords-") as tmp:
        root = Path(tmp)
        myntra = myntra_products(args.myntra, args.records)
        # Small targets so each split has several shards to spread over the writer processes.
        results = [bench_set("myntra-dev 60x80 -> 224", myntra, 224, root / "myntra", target_mb=2.0)]
        large = large_products(root / "large-images", args.large, [p["title"] for p in myntra])
        results.append(bench_set("generated 800x800 -> 224", large, 224, root / "large", target_mb=0.5))
    print(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
