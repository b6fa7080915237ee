"""Shard planning and the parallel shard writers.

A split's records are put in a fixed pseudo-random order (hash of seed and product id, so every
shard mixes classes) and cut into ``ceil(estimated bytes / target size)`` files. The plan depends
only on the input and the config, so every fan-out piece computes the same one and writes its own
files (``index % num_shards == shard_index``), named ``part-<index>-of-<count>`` globally. One
process writes one file, from image to GZIP record; processes are spawned (not forked) because
TensorFlow and gensim do not survive a fork.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts.features import FeatureSpec
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.contracts.tables import Reject
from ecom_kfp.tfrecord_build.imaging import ImageReject, read_image, reencode
from ecom_kfp.tfrecord_build.records import RecordSerializer
from ecom_kfp.tfrecord_build.splits import unit_hash
from ecom_kfp.tfrecord_build.text import TitleEmbedder, load_doc2vec

#: Records whose images are re-encoded to estimate the record size before planning.
SIZE_SAMPLE = 32
#: JPEG bytes barely compress; the fastest zlib level keeps GZIP from costing real CPU.
GZIP_LEVEL = 1
#: Records a writer takes phase by phase (all images, then all title vectors, then all writes), so
#: each library's code and tables stay in the CPU caches through a batch instead of being evicted
#: by the others at every record: about a tenth less CPU per record on thumbnails.
WRITE_BATCH = 256


@dataclass(frozen=True)
class RecordInput:
    """Everything one record needs except its image pixels and title vector (computed by the writer)."""

    product_id: str
    title: str
    image_uri: str
    labels: tuple[int, ...]
    other_reasons: tuple[str | None, ...]
    business_value: float
    group_id: str
    category_path: str = ""

    def serialize(self, serializer: RecordSerializer, image_jpeg: bytes, title_vector: Sequence[float]) -> bytes:
        """This record with its stored image and title vector, as the feature spec serializes it."""
        return serializer.serialize(image_jpeg=image_jpeg, title=self.title, title_vector=title_vector,
                                    labels=self.labels, business_value=self.business_value,
                                    product_id=self.product_id, group_id=self.group_id,
                                    category_path=self.category_path)


@dataclass(frozen=True)
class ShardTask:
    """One shard file to write."""

    split: str
    index: int
    count: int
    target: str
    records: tuple[RecordInput, ...]


@dataclass(frozen=True)
class WriterSettings:
    """What every writer process loads once.

    Attributes:
        spec: The record spec.
        jpeg_quality: Quality of the stored JPEGs.
        spm_model: Local path of the SentencePiece model.
        doc2vec_model: Local path (or URI) of the Doc2Vec model.
        seed: Seed of the title vector inference.
        infer_epochs: Epochs of the title vector inference.
    """

    spec: FeatureSpec
    jpeg_quality: int
    spm_model: str
    doc2vec_model: str
    seed: int
    infer_epochs: int


@dataclass
class ShardResult:
    """What writing one shard produced.

    Attributes:
        split: Its split.
        index: Its file index within the split.
        target: Its URI.
        records: Records written.
        bytes: Size of the shard file.
        rejects: Products whose image failed.
        class_counts: Per level, records per class id.
        other_reasons: Per level, records labelled ``other`` per reason.
        product_ids: Ids written, in order.
        seconds: Wall time spent on the file.
    """

    split: str
    index: int
    target: str
    records: int = 0
    bytes: int = 0
    rejects: list[Reject] = field(default_factory=list)
    class_counts: list[Counter[int]] = field(default_factory=list)
    other_reasons: list[Counter[str]] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0


def record_order(records: Iterable[RecordInput], seed: int) -> list[RecordInput]:
    """Records in their deterministic, class-mixing shard order."""
    return sorted(records, key=lambda r: (unit_hash(f"order-{seed}", r.product_id), r.product_id))


def estimate_record_bytes(records: Sequence[RecordInput], settings: WriterSettings) -> int | None:
    """Mean serialized size of up to :data:`SIZE_SAMPLE` records (real images, zero vectors).

    Returns:
        The estimate, or ``None`` when no sampled image decodes.
    """
    serializer = RecordSerializer(settings.spec)
    zeros = [0.0] * settings.spec.title_vector_dim
    sizes = [len(record.serialize(serializer, image, zeros)) for record in records[:SIZE_SAMPLE]
             if (image := _stored_image(record, settings, [])) is not None]
    return math.ceil(statistics.fmean(sizes)) if sizes else None


def _stored_image(record: RecordInput, settings: WriterSettings, rejects: list[Reject]) -> bytes | None:
    """The record's image as stored, or ``None`` once its reject is added to ``rejects``."""
    spec = settings.spec
    try:
        return reencode(read_image(record.image_uri), spec.image_size, spec.resize_mode, settings.jpeg_quality)
    except ImageReject as err:
        rejects.append(Reject(record.product_id, err.reason, err.detail))
        return None


def plan_shards(split: str, records: Sequence[RecordInput], record_bytes: int | None, target_bytes: int,
                layout: DatasetLayout) -> list[ShardTask]:
    """Cut one split (already in :func:`record_order`) into shard files of about ``target_bytes``.

    An empty split still gets one (empty) file, so every split directory is readable.
    """
    count = max(1, math.ceil(len(records) * (record_bytes or 0) / target_bytes))
    per_file = math.ceil(len(records) / count) if records else 0
    return [ShardTask(split, i, count, layout.shard(split, i, count), tuple(records[i * per_file:(i + 1) * per_file]))
            for i in range(count)]


_state: dict[str, Any] = {}


def init_worker(settings: WriterSettings) -> None:
    """Load the text models and set up the record serializer once per writer process."""
    with open(settings.spm_model, "rb") as fh:
        spm_model = fh.read()
    _state["settings"] = settings
    _state["embedder"] = TitleEmbedder(spm_model, load_doc2vec(settings.doc2vec_model), settings.seed,
                                       settings.infer_epochs)
    _state["serializer"] = RecordSerializer(settings.spec)


def write_shard(task: ShardTask) -> ShardResult:
    """Write one shard file (in a writer process set up by :func:`init_worker`)."""
    import tensorflow as tf

    settings: WriterSettings = _state["settings"]
    embedder: TitleEmbedder = _state["embedder"]
    serializer: RecordSerializer = _state["serializer"]
    spec = settings.spec
    start = time.perf_counter()
    result = ShardResult(task.split, task.index, task.target,
                         class_counts=[Counter() for _ in range(spec.num_levels)],
                         other_reasons=[Counter() for _ in range(spec.num_levels)])
    local_dir = os.path.dirname(task.target) if not uri.is_gcs(task.target) else None
    if local_dir:
        os.makedirs(local_dir, exist_ok=True)
    # Written under a temporary name and moved (or uploaded) once complete: readers never see half a shard.
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=".tmp", dir=local_dir)
    os.close(fd)
    try:
        options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=GZIP_LEVEL)
        with tf.io.TFRecordWriter(tmp, options) as writer:
            for first in range(0, len(task.records), WRITE_BATCH):
                batch = task.records[first:first + WRITE_BATCH]
                images = [_stored_image(record, settings, result.rejects) for record in batch]
                kept = [(record, image) for record, image in zip(batch, images, strict=True) if image is not None]
                vectors = [embedder.vector(record.title).tolist() for record, _ in kept]
                for (record, image), vector in zip(kept, vectors, strict=True):
                    writer.write(record.serialize(serializer, image, vector))
                    result.records += 1
                    result.product_ids.append(record.product_id)
                    for level, (label, reason) in enumerate(zip(record.labels, record.other_reasons, strict=True)):
                        result.class_counts[level][label] += 1
                        if reason is not None:
                            result.other_reasons[level][reason] += 1
        result.bytes = os.path.getsize(tmp)
        if local_dir:
            os.chmod(tmp, 0o644)
            os.replace(tmp, task.target)
        else:
            uri.copy(tmp, task.target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    result.seconds = time.perf_counter() - start
    return result


def _writer_context() -> Any:
    """A forkserver that imports TensorFlow and gensim once, so each writer starts in milliseconds.

    Spawned writers each imported TensorFlow (seconds of CPU apiece), which cost more than small
    builds gain from a second process. Workers forked from a server that has only imported the
    libraries, and run no TensorFlow op before the fork, are safe.
    """
    context = get_context("forkserver")
    context.set_forkserver_preload(["tensorflow", "gensim.models.doc2vec", "ecom_kfp.tfrecord_build.writer"])
    return context


def write_shards(tasks: Sequence[ShardTask], settings: WriterSettings, workers: int,
                 progress: bool = True) -> list[ShardResult]:
    """Write ``tasks`` with up to ``workers`` processes (in this process when one is enough).

    Returns:
        Results in task order.
    """
    bar = tqdm(total=sum(len(t.records) for t in tasks), unit="rec", desc="tfrecords", disable=not progress)
    results: dict[int, ShardResult] = {}
    with bar:
        if workers <= 1 or len(tasks) <= 1:
            init_worker(settings)
            for i, task in enumerate(tasks):
                results[i] = write_shard(task)
                bar.update(len(task.records))
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=_writer_context(),
                                     initializer=init_worker, initargs=(settings,)) as pool:
                futures = {pool.submit(write_shard, task): i for i, task in enumerate(tasks)}
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    bar.update(len(tasks[i].records))
    return [results[i] for i in range(len(tasks))]
