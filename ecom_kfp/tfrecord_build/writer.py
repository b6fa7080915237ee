"""Shard planning and the parallel shard writers.

A split's records are put in a fixed pseudo-random order (hash of seed and product id, so every
shard mixes classes) and cut into ``ceil(estimated bytes / target size)`` files by the global step,
which stores each file's records (:func:`records_table`). A write piece writes its share of those
files, named ``part-<index>-of-<count>`` globally. One process writes one file, from image to GZIP
record, reading the file's planned records itself, so no process holds more than one file's
records. A file's bytes depend only on its planned records and the plan's writer settings, not on
which piece or process writes it.
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

import pyarrow as pa
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts.features import BUSINESS_VALUE, GROUP_ID, IMAGE, PRODUCT_ID, TITLE, TITLE_VECTOR, FeatureSpec
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

    def serialize(self, serializer: RecordSerializer, image_jpeg: bytes, title_vector: Sequence[float]) -> bytes:
        """This record with its stored image and title vector, as the feature spec serializes it."""
        return serializer.serialize(image_jpeg=image_jpeg, title=self.title, title_vector=title_vector,
                                    labels=self.labels, business_value=self.business_value,
                                    product_id=self.product_id, group_id=self.group_id)


#: Columns of a planned shard file's records (:class:`RecordInput` field by field).
RECORDS_SCHEMA = pa.schema([
    ("product_id", pa.string()), ("title", pa.string()), ("image_uri", pa.string()),
    ("labels", pa.list_(pa.int32())), ("other_reasons", pa.list_(pa.string())),
    ("business_value", pa.float64()), ("group_id", pa.string()),
])


def records_table(records: Sequence[RecordInput]) -> pa.Table:
    """The :data:`RECORDS_SCHEMA` table of ``records``, in their order."""
    return pa.Table.from_pylist([{"product_id": r.product_id, "title": r.title, "image_uri": r.image_uri,
                                  "labels": list(r.labels), "other_reasons": list(r.other_reasons),
                                  "business_value": r.business_value, "group_id": r.group_id} for r in records],
                                schema=RECORDS_SCHEMA)


def read_records(source: str) -> list[RecordInput]:
    """The records of one planned shard file (written by :func:`records_table`), in their order."""
    return [RecordInput(row["product_id"], row["title"], row["image_uri"], tuple(row["labels"]),
                        tuple(row["other_reasons"]), row["business_value"], row["group_id"])
            for row in uri.read_parquet(source).to_pylist()]


@dataclass(frozen=True)
class ShardTask:
    """One shard file to write: its global name and where its planned records are.

    Attributes:
        split: Its split.
        index: Its file index within the split.
        count: Files of the split.
        target: URI to write.
        source: URI of its planned records (:func:`records_table`).
        size: Records planned.
    """

    split: str
    index: int
    count: int
    target: str
    source: str
    size: int


@dataclass(frozen=True)
class WriterSettings:
    """What every writer process loads once.

    Attributes:
        spec: The record spec.
        jpeg_quality: Quality of the stored JPEGs.
        spm_model: URI of the SentencePiece model.
        doc2vec_model: URI of the Doc2Vec model.
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
    """Mean serialized size of up to :data:`SIZE_SAMPLE` records (real images).

    Computed from the protobuf wire format (:func:`serialized_size`) rather than by serializing,
    so the global step never imports TensorFlow (about 0.7 GB of its peak memory otherwise).

    Returns:
        The estimate, or ``None`` when no sampled image decodes.
    """
    sizes = [serialized_size(settings.spec, record, len(image)) for record in records[:SIZE_SAMPLE]
             if (image := _stored_image(record, settings, [])) is not None]
    return math.ceil(statistics.fmean(sizes)) if sizes else None


def _varint_bytes(value: int) -> int:
    """Bytes of ``value`` as a protobuf varint (a negative int64 always takes 10)."""
    if value < 0:
        return 10
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _field_bytes(payload: int) -> int:
    """Bytes of one length-delimited protobuf field (one-byte tag) carrying ``payload`` bytes."""
    return 1 + _varint_bytes(payload) + payload


def serialized_size(spec: FeatureSpec, record: RecordInput, image_bytes: int) -> int:
    """Length of ``record`` serialized as a ``tf.train.Example`` (as :class:`RecordSerializer`
    writes it) with an image of ``image_bytes``, from the wire format: every feature is a map
    entry (key, Feature) holding one bytes value, or a packed float or int64 list."""
    def one_bytes(n: int) -> int:
        return _field_bytes(_field_bytes(n))  # Feature{bytes_list: BytesList{value: [n bytes]}}

    def packed(payload: int) -> int:
        return _field_bytes(_field_bytes(payload))  # Feature{float_list|int64_list: {value: packed}}

    features = {IMAGE: one_bytes(image_bytes), TITLE: one_bytes(len(record.title.encode("utf-8"))),
                TITLE_VECTOR: packed(4 * spec.title_vector_dim), BUSINESS_VALUE: packed(4),
                PRODUCT_ID: one_bytes(len(record.product_id.encode("utf-8"))),
                GROUP_ID: one_bytes(len(record.group_id.encode("utf-8")))}
    features.update((key, packed(_varint_bytes(label))) for key, label in zip(spec.label_keys, record.labels,
                                                                            strict=True))
    entries = sum(_field_bytes(_field_bytes(len(key.encode())) + _field_bytes(size)) for key, size in features.items())
    return _field_bytes(entries)


def _stored_image(record: RecordInput, settings: WriterSettings, rejects: list[Reject]) -> bytes | None:
    """The record's image as stored, or ``None`` once its reject is added to ``rejects``."""
    spec = settings.spec
    try:
        return reencode(read_image(record.image_uri), spec.image_size, spec.resize_mode, settings.jpeg_quality)
    except ImageReject as err:
        rejects.append(Reject(record.product_id, err.reason, err.detail))
        return None


def split_files(records: Sequence[RecordInput], record_bytes: int | None, target_bytes: int) -> list[list[RecordInput]]:
    """Cut one split (already in :func:`record_order`) into the records of files of about ``target_bytes``.

    An empty split still gets one (empty) file, so every split directory is readable.
    """
    count = max(1, math.ceil(len(records) * (record_bytes or 0) / target_bytes))
    per_file = math.ceil(len(records) / count) if records else 0
    return [list(records[i * per_file:(i + 1) * per_file]) for i in range(count)]


_state: dict[str, Any] = {}


def init_worker(settings: WriterSettings) -> None:
    """Load the text models and set up the record serializer once per writer process."""
    spm_model = uri.read_bytes(settings.spm_model)
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
    records = read_records(task.source)
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
            for first in range(0, len(records), WRITE_BATCH):
                batch = records[first:first + WRITE_BATCH]
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
    bar = tqdm(total=sum(t.size for t in tasks), unit="rec", desc="tfrecords", disable=not progress)
    results: dict[int, ShardResult] = {}
    with bar:
        if workers <= 1 or len(tasks) <= 1:
            init_worker(settings)
            for i, task in enumerate(tasks):
                results[i] = write_shard(task)
                bar.update(task.size)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=_writer_context(),
                                     initializer=init_worker, initargs=(settings,)) as pool:
                futures = {pool.submit(write_shard, task): i for i, task in enumerate(tasks)}
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    bar.update(tasks[i].size)
    return [results[i] for i in range(len(tasks))]
