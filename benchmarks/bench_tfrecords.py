"""Records/s per core of the TFRecord writer against a plain TensorFlow loop and Pillow's own limit.

Measured in one run, on the same images, in one process (so figures are per core), taking turns
chunk by chunk so that load from other processes slows every way alike (:func:`interleaved_rates`),
as records per wall second and per CPU second (``records_per_cpu_second``, ``cpu_ratios``: the
per-core cost, unaffected by waiting for a core on a shared machine):

- ``ours``: :func:`ecom_kfp.tfrecord_build.writer.write_shard` (read, decode, resize, JPEG encode, Doc2Vec
  inference at the default ``--doc2vec-infer-epochs`` with an initially empty title vector cache,
  record serialization, GZIP write), TensorFlow already imported.
- ``tf_loop``: the same records written by a plain loop, one example at a time:
  ``tf.io.decode_jpeg`` -> ``tf.image.resize_with_pad`` -> ``tf.io.encode_jpeg`` -> ``tf.train.Example``.
- ``pillow_limit``: Pillow decode + :func:`resize_pil` + JPEG encode from bytes in memory, nothing
  else (the practical limit); ``pillow_draft_limit`` the same with libjpeg DCT scaling, which ours uses.

Then the whole stage (:func:`ecom_kfp.tfrecord_build.run`) with one writer process per CPU, for scaling.

On Myntra it also measures what the Doc2Vec inference epochs of the title vectors cost in quality
(:func:`title_vector_quality`), the evidence behind ``--doc2vec-infer-epochs``'s default.
Data sets: ``../shared/data/myntra-dev`` (60x80 JPEGs) and generated 800x800 JPEGs resized to 224.
Prints one JSON document.

Usage: ``python benchmarks/bench_tfrecords.py [--myntra DIR] [--records N] [--large N]``
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from _common import add_myntra_flag, myntra_products, write_deduped_products  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from ecom_kfp import uri  # noqa: E402
from ecom_kfp.contracts.features import FeatureSpec, resize_pil  # noqa: E402
from ecom_kfp.contracts.layouts import DatasetLayout  # noqa: E402
from ecom_kfp.tfrecord_build import TFRecordBuildConfig, run  # noqa: E402
from ecom_kfp.tfrecord_build.config import DOC2VEC_INFER_EPOCHS  # noqa: E402
from ecom_kfp.tfrecord_build.splits import unit_hash  # noqa: E402
from ecom_kfp.tfrecord_build.text import (  # noqa: E402
    Doc2VecInference,
    TitleEmbedder,
    sentencepiece_processor,
    train_doc2vec,
    train_sentencepiece,
)
from ecom_kfp.tfrecord_build.writer import (  # noqa: E402
    PLAN_SCHEMA,
    ShardTask,
    WriterSettings,
    init_worker,
    write_shard,
)

QUALITY = 90
#: Doc2Vec training epochs (the build's default) and the inference epochs compared against it.
TRAIN_EPOCHS = next(f.default for f in dataclasses.fields(TFRecordBuildConfig) if f.name == "doc2vec_epochs")
INFER_EPOCHS = (3, 5, 10, 20)


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
    text = DatasetLayout(str(root / "text-models"))
    uri.write_bytes(text.spm_model, model)
    pieces = sentencepiece_processor(model).encode(titles, out_type=str)
    doc2vec = train_doc2vec(list(zip((p["product_id"] for p in products), pieces)), spec.title_vector_dim,
                            TRAIN_EPOCHS, 0)
    Doc2VecInference.of(doc2vec).save(text, {"dim": spec.title_vector_dim, "epochs": TRAIN_EPOCHS})
    return WriterSettings(spec, QUALITY, text.root, seed=0, infer_epochs=DOC2VEC_INFER_EPOCHS)


def title_vector_quality(products: list[dict], dim: int) -> dict:
    """How title vectors inferred with fewer epochs compare with the full inference, on held-out titles.

    SentencePiece and Doc2Vec (:data:`TRAIN_EPOCHS`) are trained on the titles of ~70% of the
    products (by product id hash), as the build trains on its train split; every distinct title is
    then inferred with each of :data:`INFER_EPOCHS`. Per epoch count:

    - ``cosine_to_reference``: mean cosine similarity of the held-out titles' vectors to a reference
      inference at :data:`TRAIN_EPOCHS` with another seed (at :data:`TRAIN_EPOCHS` itself: the
      seed-to-seed noise floor).
    - ``knn_category_agreement``: share of held-out titles (whose pieces no training title has)
      whose nearest training title by cosine, same epochs, has the same finest category.
    - ``microseconds_per_title``: inference time, nothing cached.

    ``reference_knn_category_agreement`` is the agreement of the reference inference itself (its
    difference to the :data:`TRAIN_EPOCHS` row shows the seed-to-seed noise of that measure).
    """
    train = [p for p in products if unit_hash("title-quality", p["product_id"]) < 0.7]
    model = train_sentencepiece([p["title"] for p in train], 8000, seed=0).model
    processor = sentencepiece_processor(model)
    doc2vec = train_doc2vec([(p["product_id"], processor.encode(p["title"], out_type=str)) for p in train], dim,
                            TRAIN_EPOCHS, 0)
    # One title per distinct piece sequence: titles that normalise alike share a vector.
    train_titles: dict[tuple[str, ...], tuple[str, str]] = {}
    for p in train:
        train_titles.setdefault(tuple(processor.encode(p["title"], out_type=str)), (p["title"], p["category_path"][-1]))
    train_ids = {p["product_id"] for p in train}
    held_out: dict[tuple[str, ...], tuple[str, str]] = {}
    for p in products:
        key = tuple(processor.encode(p["title"], out_type=str))
        if p["product_id"] not in train_ids and key not in train_titles:
            held_out.setdefault(key, (p["title"], p["category_path"][-1]))

    def vectors(titles: list[tuple[str, str]], embedder: TitleEmbedder) -> np.ndarray:
        matrix = np.array([embedder.vector(title) for title, _ in titles])
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)

    train_list, held_out_list = list(train_titles.values()), list(held_out.values())
    train_labels = np.array([c for _, c in train_list])
    held_out_labels = np.array([c for _, c in held_out_list])

    def knn_agreement(train_vectors: np.ndarray, held_out_vectors: np.ndarray) -> float:
        nearest = np.argmax(held_out_vectors @ train_vectors.T, axis=1)
        return round(float(np.mean(train_labels[nearest] == held_out_labels)), 4)

    reference_embedder = TitleEmbedder(model, doc2vec, seed=1, epochs=TRAIN_EPOCHS, cache_size=0)
    reference = vectors(held_out_list, reference_embedder)
    reference_knn = knn_agreement(vectors(train_list, reference_embedder), reference)
    by_epochs = {}
    for epochs in INFER_EPOCHS:
        embedder = TitleEmbedder(model, doc2vec, seed=0, epochs=epochs, cache_size=0)
        start = time.perf_counter()
        train_vectors = vectors(train_list, embedder)
        held_out_vectors = vectors(held_out_list, embedder)
        seconds = time.perf_counter() - start
        by_epochs[str(epochs)] = {
            "cosine_to_reference": round(float(np.mean(np.sum(held_out_vectors * reference, axis=1))), 4),
            "knn_category_agreement": knn_agreement(train_vectors, held_out_vectors),
            "microseconds_per_title": round(seconds / (len(train_list) + len(held_out_list)) * 1e6, 1)}
    return {"train_epochs": TRAIN_EPOCHS, "default_infer_epochs": DOC2VEC_INFER_EPOCHS,
            "training_titles": len(train_list), "held_out_titles": len(held_out_list),
            "reference_knn_category_agreement": reference_knn, "by_infer_epochs": by_epochs}


Runner = Callable[[slice], None]


def write_plan(products: list[dict], num_levels: int, chunk: int, target: Path) -> str:
    """A plan as the build's global step writes it (:data:`PLAN_SCHEMA`): ``products`` in train shard
    files of ``chunk`` records, file ``i`` holding records ``i * chunk`` to ``(i + 1) * chunk``."""
    files = [i // chunk for i in range(len(products))]
    count = max(files, default=0) + 1
    table = pa.table({"product_id": [p["product_id"] for p in products], "title": [p["title"] for p in products],
                      "image_uri": [p["image_uri"] for p in products], "labels": [[1] * num_levels] * len(products),
                      "other_reasons": [[None] * num_levels] * len(products),
                      "business_value": [1.0] * len(products), "group_id": [p["product_id"] for p in products],
                      "category_path": [""] * len(products), "split": ["train"] * len(products),
                      "shard": files, "shard_count": [count] * len(products), "file": files}, PLAN_SCHEMA)
    pq.write_table(table, target)
    return str(target)


def ours_runner(products: list[dict], settings: WriterSettings, root: Path, chunk: int) -> Runner:
    """Writes a chunk of the records as one shard file with :func:`write_shard`, which reads the chunk's
    rows from the plan, as a writer process of the build does."""
    num_levels = settings.spec.num_levels
    layout = DatasetLayout(str(root / "ours"))
    plan = write_plan(products, num_levels, chunk, root / "ours-plan.parquet")
    count = -(-len(products) // chunk)
    init_worker(settings)
    warm_up = write_plan(products[:8], num_levels, 8, root / "ours-warm-up.parquet")
    write_shard(ShardTask("train", 0, 1, layout.shard("train", 0, 1), warm_up, 0, 8))  # TF, gensim
    init_worker(settings)  # an empty title vector cache again, as in a fresh writer process

    def run(part: slice) -> None:
        file, planned = part.start // chunk, part.stop - part.start
        assert part.start % chunk == 0, "parts are the plan's files"
        result = write_shard(ShardTask("train", file, count, layout.shard("train", file, count), plan, file, planned))
        assert result.records == planned, result.rejects[:3]

    return run


def tf_loop_runner(products: list[dict], size: int, root: Path) -> Runner:
    """Writes a chunk of the records as one file, one example at a time with ``tf.io`` ops."""
    import tensorflow as tf

    def one(data: bytes, writer) -> None:
        image = tf.io.decode_jpeg(data, channels=3)
        image = tf.image.resize_with_pad(tf.cast(image, tf.float32), size, size)
        jpeg = tf.io.encode_jpeg(tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8), quality=QUALITY).numpy()
        feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg]))}
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())

    def run(part: slice) -> None:
        with tf.io.TFRecordWriter(str(root / f"tf_loop-{part.start}.tfrecord.gz"), "GZIP") as writer:
            for p in products[part]:
                one(uri.read_bytes(p["image_uri"]), writer)

    run(slice(0, 8))  # warm-up: TensorFlow's ops
    return run


def pillow_runner(products: list[dict], size: int, draft: bool) -> Runner:
    """Decodes, resizes and encodes a chunk of the images from bytes already in memory."""
    blobs = [uri.read_bytes(p["image_uri"]) for p in products]

    def run(part: slice) -> None:
        for data in blobs[part]:
            image = Image.open(io.BytesIO(data))
            if draft:
                image.draft("RGB", (size, size))
            out = io.BytesIO()
            resize_pil(image, size, "pad").save(out, format="JPEG", quality=QUALITY)

    return run


def interleaved_rates(runners: dict[str, Runner], count: int, chunk: int) -> dict[str, tuple[float, float]]:
    """Records per wall second and per CPU second of each runner over ``count`` records, in turns by chunk.

    Other processes on a shared machine load it in bursts; in turns of a few hundred milliseconds
    every runner meets the same bursts. CPU seconds (this process, all its threads) do not count
    the time the runner waited for a core at all, so they measure per-core cost even on a busy machine.
    """
    wall = dict.fromkeys(runners, 0.0)
    cpu = dict.fromkeys(runners, 0.0)
    for begin in range(0, count, chunk):
        part = slice(begin, min(begin + chunk, count))
        for name, runner in runners.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            runner(part)
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
    return {name: (count / wall[name], count / cpu[name]) for name in runners}


def bench_stage(products: list[dict], size: int, root: Path, workers: int, target_mb: float) -> dict:
    inputs = write_deduped_products(products, root / f"in-{workers}")
    report = run(TFRecordBuildConfig(products=inputs.root, out=str(root / f"stage-{workers}"), image_size=size, workers=workers,
                             shard_target_mb=target_mb, min_class_count=1, doc2vec_dim=64, progress=False))
    return {"workers": workers, "records": report.records, "write_records_per_second": round(report.records_per_second, 1),
            "write_records_per_second_per_worker": round(report.records_per_second / workers, 1),
            "records_per_process_second": round(report.records_per_process_second, 1),
            "seconds": {k: round(v, 2) for k, v in report.seconds.items()}}


def bench_set(name: str, products: list[dict], size: int, root: Path, target_mb: float, chunk: int,
              vector_quality: bool = False) -> dict:
    spec = FeatureSpec(num_levels=3, title_vector_dim=64, image_size=size)
    settings = text_settings(products, root, spec)
    rates = interleaved_rates({"ours": ours_runner(products, settings, root, chunk),
                               "tf_loop": tf_loop_runner(products, size, root),
                               "pillow": pillow_runner(products, size, draft=False),
                               "pillow_draft": pillow_runner(products, size, draft=True)}, len(products), chunk)
    ours, tf_loop, pillow, pillow_draft = (rates[k][0] for k in ("ours", "tf_loop", "pillow", "pillow_draft"))
    cpu = {k: rate for k, (_, rate) in rates.items()}
    workers = os.cpu_count() or 1
    stages = [bench_stage(products, size, root, 1, target_mb)]
    if workers > 1:
        stages.append(bench_stage(products, size, root, workers, target_mb))
    result = {
        "data": name, "records": len(products), "image_size": size,
        "records_per_second_per_core": {"ours": round(ours, 1), "tf_loop": round(tf_loop, 1),
                                        "pillow_limit": round(pillow, 1), "pillow_draft_limit": round(pillow_draft, 1)},
        "ratios": {"ours_vs_tf_loop": round(ours / tf_loop, 2), "ours_vs_pillow_limit": round(ours / pillow, 2),
                   "ours_vs_pillow_draft_limit": round(ours / pillow_draft, 2)},
        "records_per_cpu_second": {"ours": round(cpu["ours"], 1), "tf_loop": round(cpu["tf_loop"], 1),
                                   "pillow_limit": round(cpu["pillow"], 1),
                                   "pillow_draft_limit": round(cpu["pillow_draft"], 1)},
        "cpu_ratios": {"ours_vs_tf_loop": round(cpu["ours"] / cpu["tf_loop"], 2),
                       "ours_vs_pillow_limit": round(cpu["ours"] / cpu["pillow"], 2),
                       "ours_vs_pillow_draft_limit": round(cpu["ours"] / cpu["pillow_draft"], 2)},
        "stage": stages,
        # Wall-clock write rate of N workers over one worker (includes spawning processes and importing TF).
        "stage_scaling": round(stages[-1]["write_records_per_second"] / stages[0]["write_records_per_second"], 2)
        if len(stages) > 1 else None,
    }
    if vector_quality:
        result["title_vector_quality"] = title_vector_quality(products, spec.title_vector_dim)
    return result


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
        results = [bench_set("myntra-dev 60x80 -> 224", myntra, 224, root / "myntra", target_mb=2.0, chunk=250,
                             vector_quality=True)]
        large = large_products(root / "large-images", args.large, [p["title"] for p in myntra])
        results.append(bench_set("generated 800x800 -> 224", large, 224, root / "large", target_mb=0.5, chunk=25))
    print(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
