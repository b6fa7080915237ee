"""Shard planning and the parallel shard writers.

A split's records are put in a fixed pseudo-random order (hash of seed and product id, so every
shard mixes classes) and cut into ``ceil(estimated bytes / target size)`` files, named
``part-<index>-of-<count>`` globally. The global step stores that plan as a table
(:data:`PLAN_SCHEMA`); a write piece turns its rows back into :class:`ShardTask` s. One process
writes one file, from image to GZIP record, with the title models read as data from the plan's
``text/`` (:class:`~ecom_kfp.tfrecord_build.text.Doc2VecInference`).
"""

from __future__ import annotations

import hashlib
import math
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, overload

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.contracts.features import (
    BUSINESS_VALUE,
    CATEGORY_PATH,
    GROUP_ID,
    IMAGE,
    PRODUCT_ID,
    TITLE,
    TITLE_VECTOR,
    FeatureSpec,
)
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.contracts.tables import Reject
from ecom_kfp.tfrecord_build.imaging import ImageReject, read_image, reencode
from ecom_kfp.tfrecord_build.records import RecordSerializer
from ecom_kfp.tfrecord_build.text import Doc2VecInference, TitleEmbedder

#: Records whose images are re-encoded to estimate the record size before planning.
SIZE_SAMPLE = 32
#: Protobuf bytes around one feature of a serialized Example besides its key and values: the tags
#: and lengths of the map entry, the key, the ``Feature`` and its value list (one to three bytes each).
FEATURE_FRAMING = 10
#: JPEG bytes barely compress; the fastest zlib level keeps GZIP from costing real CPU.
GZIP_LEVEL = 1
#: Records a writer takes phase by phase (all images, then all title vectors, then all writes), so
#: each library's code and tables stay in the CPU caches through a batch instead of being evicted
#: by the others at every record: about a tenth less CPU per record on thumbnails.
WRITE_BATCH = 256


@dataclass(frozen=True, slots=True)
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


#: One row per planned record, in shard-file order: the record's fields, its split, its file index
#: within the split (``shard``, of ``shard_count``) and its file number across the splits (``file``,
#: train's files first), by which write pieces take every N-th file.
PLAN_SCHEMA = pa.schema([
    ("product_id", pa.string()), ("title", pa.string()), ("image_uri", pa.string()),
    ("labels", pa.list_(pa.int32())), ("other_reasons", pa.list_(pa.string())), ("business_value", pa.float64()),
    ("group_id", pa.string()), ("category_path", pa.string()), ("split", pa.string()),
    ("shard", pa.int32()), ("shard_count", pa.int32()), ("file", pa.int32()),
])
_RECORD_FIELDS = ("product_id", "title", "image_uri", "labels", "other_reasons", "business_value", "group_id",
                  "category_path")


class PlanRecords(Sequence[RecordInput]):
    """The records of :data:`PLAN_SCHEMA` rows, kept as Arrow columns (about 200 bytes a record) and
    made :class:`RecordInput` objects only for the slice asked for, so a writer holds one batch of them."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table.select(list(_RECORD_FIELDS))

    def __len__(self) -> int:
        return self._table.num_rows

    @overload
    def __getitem__(self, index: int) -> RecordInput: ...

    @overload
    def __getitem__(self, index: slice) -> list[RecordInput]: ...

    def __getitem__(self, index: int | slice) -> RecordInput | list[RecordInput]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("PlanRecords slices are contiguous")
            return records_of(self._table.slice(start, max(0, stop - start)))
        return records_of(self._table.slice(range(len(self))[index], 1))[0]


@dataclass(frozen=True)
class ShardTask:
    """One shard file to write: the rows of a local :data:`PLAN_SCHEMA` Parquet file whose ``file`` is ``file``.

    Attributes:
        split: Its split.
        index: Its file index within the split, of ``count``.
        target: Its URI.
        plan_records: Local path of the plan's records.
        file: Its file number across the splits.
        planned: Its planned records.
    """

    split: str
    index: int
    count: int
    target: str
    plan_records: str
    file: int
    planned: int

    def records(self) -> PlanRecords:
        """The file's records, in file order; read by the writer, so that the process handing out the
        tasks never holds a catalog's worth of rows (57 MB at 176k records, plus the per-file copies)."""
        return PlanRecords(pq.read_table(self.plan_records, filters=[("file", "==", self.file)]))


@dataclass(frozen=True)
class WriterSettings:
    """What every writer process loads once.

    Attributes:
        spec: The record spec.
        jpeg_quality: Quality of the stored JPEGs.
        text_root: Root (a :class:`DatasetLayout`) whose ``text/`` holds the SentencePiece model and
            Doc2Vec as data.
        seed: Seed of the title vector inference.
        infer_epochs: Epochs of the title vector inference.
    """

    spec: FeatureSpec
    jpeg_quality: int
    text_root: str
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
        sha256: SHA-256 of the shard file.
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
    sha256: str = ""
    seconds: float = 0.0


def estimate_record_bytes(records: Sequence[RecordInput], settings: WriterSettings) -> int | None:
    """Mean serialized size of up to :data:`SIZE_SAMPLE` records: their images re-encoded as stored,
    the other features counted from their lengths plus :data:`FEATURE_FRAMING` bytes per feature.

    Counted rather than serialized so that the global step never imports TensorFlow (about 0.7 GB
    of its peak memory); ``tests/tfrecord_build/test_records.py`` checks the count against real records.

    Returns:
        The estimate, or ``None`` when no sampled image decodes.
    """
    spec = settings.spec
    keys = (IMAGE, TITLE, TITLE_VECTOR, BUSINESS_VALUE, PRODUCT_ID, GROUP_ID, CATEGORY_PATH, *spec.label_keys)
    # float32 values and a varint per label (class ids below 16,384 take at most two bytes).
    fixed = sum(len(key) + FEATURE_FRAMING for key in keys) + 4 * (spec.title_vector_dim + 1) + 2 * spec.num_levels
    sizes = [fixed + len(image) + sum(len(text.encode("utf-8")) for text in (r.title, r.product_id, r.group_id,
                                                                             r.category_path))
             for r in records[:SIZE_SAMPLE] if (image := _stored_image(r, settings, [])) is not None]
    return math.ceil(statistics.fmean(sizes)) if sizes else None


def _stored_image(record: RecordInput, settings: WriterSettings, rejects: list[Reject]) -> bytes | None:
    """The record's image as stored, or ``None`` once its reject is added to ``rejects``."""
    spec = settings.spec
    try:
        return reencode(read_image(record.image_uri), spec.image_size, spec.resize_mode, settings.jpeg_quality)
    except ImageReject as err:
        rejects.append(Reject(record.product_id, err.reason, err.detail))
        return None


def file_cuts(records: int, record_bytes: int | None, target_bytes: int) -> tuple[int, int]:
    """How one split of ``records`` (in their shard order) is cut into files of about ``target_bytes``.

    Returns:
        ``(files, records per file)``; record ``i`` is in file ``i // records per file``. An empty
        split still gets one (empty) file, so every split directory is readable.
    """
    count = max(1, math.ceil(records * (record_bytes or 0) / target_bytes))
    return count, math.ceil(records / count) if records else 0


def records_of(table: pa.Table) -> list[RecordInput]:
    """The records of :data:`PLAN_SCHEMA` rows (at least the record fields), in row order."""
    return [RecordInput(**{**row, "labels": tuple(row["labels"]), "other_reasons": tuple(row["other_reasons"])})
            for row in table.select(list(_RECORD_FIELDS)).to_pylist()]


def shard_tasks(plan_records: str, files: Sequence[tuple[str, int, int, int]], layout: DatasetLayout) -> list[ShardTask]:
    """The tasks of ``files`` (``(split, index, count, file number)``) of the local :data:`PLAN_SCHEMA`
    Parquet file ``plan_records``, written under ``layout``."""
    numbers = [number for *_, number in files]
    counts = pq.read_table(plan_records, columns=["file"], filters=[("file", "in", numbers)])["file"].value_counts()
    planned = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
    return [ShardTask(split, index, count, layout.shard(split, index, count), plan_records, number, planned.get(number, 0))
            for split, index, count, number in files]


_state: dict[str, Any] = {}


def init_worker(settings: WriterSettings) -> None:
    """Load the text models (as data) and set up the record serializer once per writer process."""
    text = DatasetLayout(settings.text_root)
    _state["settings"] = settings
    _state["embedder"] = TitleEmbedder(uri.read_bytes(text.spm_model), Doc2VecInference.load(text).model(),
                                       settings.seed, settings.infer_epochs)
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
            records = task.records()
            for first in range(0, len(records), WRITE_BATCH):
                batch = records[first:first + WRITE_BATCH]
                images = [_stored_image(record, settings, result.rejects) for record in batch]
                kept = [(record, image) for record, image in zip(batch, images, strict=True) if image is not None]
                vectors = [embedder.vector(record.title).tolist() for record, _ in kept]
                for (record, image), vector in zip(kept, vectors, strict=True):
                    writer.write(record.serialize(serializer, image, vector))
                    result.records += 1
                    for level, (label, reason) in enumerate(zip(record.labels, record.other_reasons, strict=True)):
                        result.class_counts[level][label] += 1
                        if reason is not None:
                            result.other_reasons[level][reason] += 1
        result.bytes = os.path.getsize(tmp)
        with open(tmp, "rb") as fh:
            result.sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
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
    bar = tqdm(total=sum(t.planned for t in tasks), unit="rec", desc="tfrecords", disable=not progress)
    results: dict[int, ShardResult] = {}
    with bar:
        if workers <= 1 or len(tasks) <= 1:
            init_worker(settings)
            for i, task in enumerate(tasks):
                results[i] = write_shard(task)
                bar.update(task.planned)
        else:
            # A fresh writer per file: a long-lived writer grew by ~4 KB per record it wrote (about
            # half of it the title-vector cache, the rest untraced heap), so a pod's memory grew
            # with the catalog. A process forked from the preloaded server starts in milliseconds.
            with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=_writer_context(),
                                     initializer=init_worker, initargs=(settings,),
                                     max_tasks_per_child=1) as pool:
                futures = {pool.submit(write_shard, task): i for i, task in enumerate(tasks)}
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    bar.update(tasks[i].planned)
    return [results[i] for i in range(len(tasks))]
