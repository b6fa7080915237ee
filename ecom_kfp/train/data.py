"""What training reads from a tfrecord-build output, and the tf.data input pipeline over it.

Manifest keys read (the only ones; both defined in :mod:`ecom_kfp.contracts.features`):
:data:`MANIFEST_FEATURE_SPEC` holds :meth:`FeatureSpec.to_dict`, :data:`MANIFEST_COUNTS` maps each
split to its number of records (an int, or a mapping with ``"total"``; read by
:func:`~ecom_kfp.contracts.features.split_count`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecom_kfp import uri
from ecom_kfp.contracts import features, labels, serving
from ecom_kfp.contracts.digests import DIGESTS_KEY, DigestError, verify_tree
from ecom_kfp.contracts.layouts import DatasetLayout

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from ecom_kfp.train.text import TitleTokenizer

MANIFEST_FEATURE_SPEC = features.MANIFEST_KEY
MANIFEST_COUNTS = features.MANIFEST_COUNTS
SHUFFLE_BUFFER = 2048


class DatasetError(ValueError):
    """The ``--data`` URI is not a usable tfrecord-build output."""


@dataclass(frozen=True)
class TrainingData:
    """A tfrecord-build output, checked and loaded.

    Attributes:
        layout: Where its files are.
        manifest: The whole ``manifest.json``.
        spec: The record spec the builder wrote.
        vocabularies: One per level, level 1 first.
        counts: Records per split.
    """

    layout: DatasetLayout
    manifest: dict[str, Any]
    spec: features.FeatureSpec
    vocabularies: list[labels.Vocabulary]
    counts: dict[str, int]

    @property
    def num_classes(self) -> list[int]:
        return [len(v) for v in self.vocabularies]

    def shards(self, split: str) -> list[str]:
        """Shard URIs of ``split``, sorted so every rank sees the same order."""
        return sorted(uri.list_files(self.layout.split_dir(split), suffix=".tfrecord.gz"))

    @classmethod
    def load(cls, data_uri: str) -> TrainingData:
        """Read and check ``data_uri``.

        Raises:
            DatasetError: naming ``--data`` and what is missing or malformed.
        """
        layout = DatasetLayout(data_uri)
        where = f"--data {data_uri}"
        if not uri.exists(layout.manifest):
            raise DatasetError(f"{where}: no manifest.json; is this a tfrecord-build output?")
        try:
            manifest = uri.read_json(layout.manifest)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DatasetError(f"{where}: manifest.json is not valid JSON ({err})") from err
        if not isinstance(manifest, Mapping) or MANIFEST_FEATURE_SPEC not in manifest:
            raise DatasetError(f"{where}: manifest.json lacks {MANIFEST_FEATURE_SPEC!r}")
        try:
            spec = features.FeatureSpec.from_dict(manifest[MANIFEST_FEATURE_SPEC])
        except (TypeError, ValueError) as err:
            raise DatasetError(f"{where}: bad {MANIFEST_FEATURE_SPEC!r} in manifest.json ({err})") from err
        counts = {split: _split_count(manifest, split, where) for split in layout.SPLITS}
        for name, target in (("text/spm.model", layout.spm_model), ("text/piece_vectors.npy", layout.piece_vectors)):
            if not uri.exists(target):
                raise DatasetError(f"{where}: {name} is missing")
        try:
            vocabularies = labels.load_all(layout.labels, spec.num_levels)
        except (FileNotFoundError, ValueError) as err:
            raise DatasetError(f"{where}: label vocabularies unusable ({err})") from err
        data = cls(layout, dict(manifest), spec, vocabularies, counts)
        for split in ("train", "val"):
            if not data.shards(split):
                raise DatasetError(f"{where}: no {split}/*.tfrecord.gz shards")
            if counts[split] < 1:
                raise DatasetError(f"{where}: manifest counts {counts[split]} {split} records")
        try:  # before any record or text model is read
            verify_tree(data_uri, manifest.get(DIGESTS_KEY), layout.PARTS, where)
        except DigestError as err:
            raise DatasetError(str(err)) from err
        return data


def _split_count(manifest: Mapping[str, Any], split: str, where: str) -> int:
    count = features.split_count(manifest, split)
    if count is None:
        counts = manifest.get(MANIFEST_COUNTS)
        value = counts.get(split) if isinstance(counts, Mapping) else None
        raise DatasetError(f"{where}: manifest.json {MANIFEST_COUNTS}[{split!r}] must be a record count, got {value!r}")
    return count


@dataclass(frozen=True)
class PipelineOptions:
    """How to read one split.

    Attributes:
        batch_size: Examples per batch on this process.
        image_size: Model input side (records are resized when it differs from the stored size).
        training: Shuffle and repeat forever.
        rank: This process's Horovod rank; it reads every ``world``-th shard (or record).
        world: Number of processes.
        business_value_weights: Yield business value as the sample weight.
        seed: Shuffle seed.
        deterministic: Keep the order of parallel reads and maps when training too. Off, the
            order follows whichever call finishes first, so it changes with the machine's load.
        branch_heads: Branches (:data:`~ecom_kfp.contracts.serving.BRANCHES`) whose heads of their
            own are trained: each level's label is also yielded under
            :func:`~ecom_kfp.contracts.serving.model_branch_head` (a fused model's auxiliary image
            heads, or a late-fusion model's two branches).
        read_once: Read this rank's share of the split exactly once, in order, even with several
            ranks (``training`` must be False): for computing each product's backbone features
            once (:mod:`ecom_kfp.train.frozen`), which then repeats them itself.
    """

    batch_size: int
    image_size: int
    training: bool
    rank: int = 0
    world: int = 1
    business_value_weights: bool = False
    seed: int = 0
    branch_heads: tuple[str, ...] = ()
    deterministic: bool = False
    read_once: bool = False

    def __post_init__(self) -> None:
        if self.read_once and self.training:
            raise ValueError("read_once reads a split once; training data repeats")

    @property
    def in_order(self) -> bool:
        """Whether parallel reads and maps must keep their input order."""
        return self.deterministic or not self.training


def steps_per_epoch(records: int, batch_size: int, world: int) -> int:
    """Steps every rank runs per epoch: the same on all ranks, or allreduce would deadlock."""
    return max(1, records // (batch_size * world))


def eval_steps(records: int, batch_size: int, world: int) -> int:
    """Steps every rank runs to cover ``records`` once between them (with several ranks the
    data repeats, so the last batches may be seen twice; one process reads the split once)."""
    return max(1, math.ceil(records / (batch_size * world)))


def _split_records(data: TrainingData, split: str, options: PipelineOptions) -> tf.data.Dataset:
    """This rank's serialized records of ``split``, repeated as :func:`make_dataset` describes."""
    import tensorflow as tf

    files = data.shards(split)
    if not files:
        raise DatasetError(f"--data {data.layout.root}: no {split}/*.tfrecord.gz shards")
    shard_files = len(files) >= options.world
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shard_files:
        ds = ds.shard(options.world, options.rank)
    if options.training:
        ds = ds.shuffle(len(files), seed=options.seed, reshuffle_each_iteration=True)
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
                       cycle_length=min(len(files), 8), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=options.in_order)
    if not shard_files:
        ds = ds.shard(options.world, options.rank)
    if (options.training or options.world > 1) and not options.read_once:
        ds = ds.repeat()
    return ds


def make_dataset(data: TrainingData, split: str | Sequence[str], tokenizer: TitleTokenizer,
                 options: PipelineOptions) -> tf.data.Dataset:
    """Batches of ``({image, title_tokens[, title_words]}, {level_k: label}[, weight])`` for ``split``.

    The CPU side only reads, decodes and batches: serialized records are shuffled and batched,
    then each batch is parsed at once, its JPEGs decoded and its titles tokenised with batched
    ops. Images keep the stored size and stay uint8 (a quarter of float32's bytes to batch and copy
    to the accelerator) unless ``image_size`` differs from it, in which case they are resized to
    float32. Augmentation is not done here: the model's train step runs it on the accelerator
    (:mod:`ecom_kfp.train.augment`).

    Each rank reads its own shards when there are at least as many shards as ranks, else every
    ``world``-th record. Training data repeats forever: the caller fixes the steps per epoch so
    that all ranks step in lock-step. Evaluation data (``training=False``) repeats too when
    ``world > 1`` for the same reason; with one process it is read exactly once.

    Training may read several splits as one (``("train", "val")`` for ``--fit-on-val``). Each
    split is sharded on its own, so a rank never ends up with one split's shards alone, and
    records are drawn from the splits in proportion to their sizes, so every record is seen
    about once per epoch whichever split holds it.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    splits = [split] if isinstance(split, str) else list(split)
    if len(splits) > 1 and not options.training:
        raise ValueError(f"only training reads several splits at once, got {splits}")
    parts = [_split_records(data, name, options) for name in splits]
    if len(parts) == 1:
        ds = parts[0]
    else:
        total = sum(data.counts[name] for name in splits)
        ds = tf.data.Dataset.sample_from_datasets(parts, weights=[data.counts[name] / total for name in splits],
                                                  seed=options.seed)
    if options.training:
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=options.seed, reshuffle_each_iteration=True)
    ds = ds.batch(options.batch_size, drop_remainder=options.training)

    spec = data.spec
    level_keys = spec.label_keys
    decode_images = image_decoder(spec, options.image_size)

    def to_model_inputs(serialized: tf.Tensor):
        record = spec.parse(serialized)
        x = {serving.MODEL_IMAGE_INPUT: decode_images(record[features.IMAGE]),
             **tokenizer.model_inputs(record[features.TITLE])}
        y = {serving.model_output(level): record[key] for level, key in enumerate(level_keys, start=1)}
        for branch in options.branch_heads:
            y.update({serving.model_branch_head(branch, level): record[key]
                      for level, key in enumerate(level_keys, start=1)})
        if options.business_value_weights:
            return x, y, record[features.BUSINESS_VALUE]
        return x, y

    return ds.map(to_model_inputs, num_parallel_calls=autotune, deterministic=options.in_order).prefetch(autotune)


def image_decoder(spec: features.FeatureSpec, image_size: int):
    """Batch of stored image bytes ``[B]`` -> ``[B, S, S, 3]``: uint8 straight from ``decode_jpeg``
    when ``image_size`` is the stored size (the builder stores S x S JPEGs), else resized float32."""
    import tensorflow as tf

    if image_size == spec.image_size:
        def decode(jpeg: tf.Tensor) -> tf.Tensor:
            return tf.ensure_shape(tf.io.decode_jpeg(jpeg, channels=3), [image_size, image_size, 3])

        dtype = tf.uint8
    else:
        def decode(jpeg: tf.Tensor) -> tf.Tensor:
            return features.decode_and_resize(jpeg, image_size, spec.resize_mode)

        dtype = tf.float32
    return lambda images: tf.map_fn(decode, images, fn_output_signature=dtype)
