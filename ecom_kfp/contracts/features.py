"""The TFRecord feature spec and image preprocessing: one definition for build, train, evaluate, serve.

Every record in ``train/``, ``val/`` and ``test/`` is a ``tf.train.Example`` with:

================  ==============  ===========================================================
key               type            meaning
================  ==============  ===========================================================
image             bytes           JPEG, already resized to ``image_size`` square by
                                  :func:`resize_pil` (pad or crop)
title             bytes           the text the model reads (UTF-8): the product title, then a
                                  word per catalog attribute of ``title_attributes``
                                  (:func:`model_title`)
title_vector      float[D]        Doc2Vec embedding of the title (D = ``title_vector_dim``)
label_level_<k>   int64           class id at level k = 1..num_levels (``labels/level_<k>.txt``,
                                  0 = other)
business_value    float           weight of the product's category for business-value scoring
product_id        bytes           catalog id
group_id          bytes           duplicate group from dedupe (splits never cut a group)
category_path     bytes           the category path the labels were computed from, joined with
                                  ``" > "`` (empty when unknown): names the true class of a
                                  product whose class is folded into ``other``
================  ==============  ===========================================================

The spec is saved in ``manifest.json`` (:meth:`FeatureSpec.to_dict`) and read back by the
trainer, the evaluator and the serving signature, so they decode exactly what the builder wrote.
TensorFlow is imported lazily: the builder's Pillow path and the KFP wrappers must not pay for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from ecom_kfp.contracts import tables

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

IMAGE = "image"
TITLE = "title"
TITLE_VECTOR = "title_vector"
BUSINESS_VALUE = "business_value"
PRODUCT_ID = "product_id"
GROUP_ID = "group_id"
CATEGORY_PATH = "category_path"
RESIZE_MODES = ("pad", "crop")
#: Padding colour: product photos are mostly shot on white, so white borders look like background.
PAD_VALUE = 255
JPEG_QUALITY = 90
#: Key of the spec (:meth:`FeatureSpec.to_dict`) in a dataset's ``manifest.json``, and so in the copy a
#: model carries (``dataset_manifest.json``).
MANIFEST_KEY = "feature_spec"
#: Key of the records per split in a dataset's ``manifest.json``: ``{split: {"total": n, ...}}``.
MANIFEST_COUNTS = "counts"
#: What an attribute value keeps in :func:`model_title`: letters and digits of any script.
_ATTRIBUTE_CHARS = re.compile(r"[^\w]|_")
#: Longest attribute word of :func:`model_title`: a seller's essay in an attribute stays one short word.
MAX_ATTRIBUTE_CHARS = 40


def split_count(manifest: Mapping[str, Any], split: str) -> int | None:
    """Records of ``split`` as a dataset's ``manifest.json`` counts them (``{"total": n}``, or a bare
    ``n``); None when it does not count them."""
    counts = manifest.get(MANIFEST_COUNTS)
    value = counts.get(split) if isinstance(counts, Mapping) else None
    if isinstance(value, Mapping):
        value = value.get("total")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def label_key(level: int) -> str:
    """Feature key of the label at ``level`` (1-based, 1 = most general)."""
    return f"label_level_{level}"


@dataclass(frozen=True)
class FeatureSpec:
    """Shape of one record; everything a reader needs to parse it.

    Attributes:
        num_levels: Taxonomy levels with a label feature (and a model head) each.
        title_vector_dim: Doc2Vec vector size.
        image_size: Side of the square stored image, in pixels.
        resize_mode: ``pad`` (keep the whole product, white borders) or ``crop`` (centre crop).
        title_attributes: Catalog columns (of each product's ``source`` row) whose values
            :func:`model_title` adds to the title the model reads; every caller of the serving
            signature composes its ``title`` input the same way, from this manifest.
    """

    num_levels: int
    title_vector_dim: int
    image_size: int = 224
    resize_mode: str = "pad"
    title_attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A manifest is read from a shared artifact store: a wrong type must fail here, by name, not
        # as a TypeError deep in a reader, nor as a string read letter by letter as column names.
        for name in ("num_levels", "title_vector_dim", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if not isinstance(self.title_attributes, tuple) or not all(
                isinstance(column, str) and column.strip() for column in self.title_attributes):
            raise ValueError(f"title_attributes must be a tuple of column names, got {self.title_attributes!r}")
        if len(set(self.title_attributes)) != len(self.title_attributes):
            raise ValueError(f"title_attributes names a column twice: {list(self.title_attributes)}")
        if self.num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {self.num_levels}")
        if self.title_vector_dim < 1:
            raise ValueError(f"title_vector_dim must be >= 1, got {self.title_vector_dim}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")

    @property
    def label_keys(self) -> list[str]:
        """Label feature keys, level 1 first."""
        return [label_key(k) for k in range(1, self.num_levels + 1)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form stored in ``manifest.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`; ignores unknown keys from newer writers."""
        known = {k: data[k] for k in ("num_levels", "title_vector_dim", "image_size", "resize_mode") if k in data}
        columns = data.get("title_attributes") or []
        if not isinstance(columns, list):
            raise ValueError(f"title_attributes must be a list of column names, got {columns!r}")
        return cls(**known, title_attributes=tuple(columns))

    def serialize(
        self,
        *,
        image_jpeg: bytes,
        title: str,
        title_vector: Sequence[float],
        labels: Sequence[int],
        business_value: float,
        product_id: str,
        group_id: str,
        category_path: str = "",
    ) -> bytes:
        """Encode one record as a serialized ``tf.train.Example``."""
        import tensorflow as tf

        if len(labels) != self.num_levels:
            raise ValueError(f"expected {self.num_levels} labels, got {len(labels)}")
        if len(title_vector) != self.title_vector_dim:
            raise ValueError(f"expected title vector of {self.title_vector_dim}, got {len(title_vector)}")

        def _bytes(v: bytes) -> tf.train.Feature:
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

        feature = {
            IMAGE: _bytes(image_jpeg),
            TITLE: _bytes(title.encode("utf-8")),
            TITLE_VECTOR: tf.train.Feature(float_list=tf.train.FloatList(value=list(title_vector))),
            BUSINESS_VALUE: tf.train.Feature(float_list=tf.train.FloatList(value=[float(business_value)])),
            PRODUCT_ID: _bytes(product_id.encode("utf-8")),
            GROUP_ID: _bytes(group_id.encode("utf-8")),
            CATEGORY_PATH: _bytes(category_path.encode("utf-8")),
        }
        for key, label in zip(self.label_keys, labels, strict=True):
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    def tf_feature_spec(self) -> dict[str, Any]:
        """The ``tf.io.parse_example`` spec of a record."""
        import tensorflow as tf

        spec: dict[str, Any] = {
            IMAGE: tf.io.FixedLenFeature([], tf.string),
            TITLE: tf.io.FixedLenFeature([], tf.string),
            TITLE_VECTOR: tf.io.FixedLenFeature([self.title_vector_dim], tf.float32),
            BUSINESS_VALUE: tf.io.FixedLenFeature([], tf.float32, default_value=1.0),
            PRODUCT_ID: tf.io.FixedLenFeature([], tf.string),
            GROUP_ID: tf.io.FixedLenFeature([], tf.string, default_value=b""),
            # Datasets built before the feature existed parse with an unknown path.
            CATEGORY_PATH: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        }
        for key in self.label_keys:
            spec[key] = tf.io.FixedLenFeature([], tf.int64)
        return spec

    def parse(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        """Parse a batch (1-D string tensor) of serialized records; images stay JPEG bytes."""
        import tensorflow as tf

        return tf.io.parse_example(serialized, self.tf_feature_spec())

    def decode_image(self, jpeg: tf.Tensor) -> tf.Tensor:
        """One image's bytes (any size, JPEG/PNG/GIF/BMP) -> float32 ``[S, S, 3]`` in 0..255."""
        return decode_and_resize(jpeg, self.image_size, self.resize_mode)


def model_title(title: str, source: str | Mapping[str, Any] | None, columns: Sequence[str]) -> str:
    """The text a model reads for a product: its title, then one word per catalog attribute.

    Each of ``columns`` that the product's catalog row (``source``: the products table's JSON text,
    or the row itself) holds a value for adds the word ``<column><value>``, letters and digits only,
    lower-cased and cut to :data:`MAX_ATTRIBUTE_CHARS` (``usage`` ``Casual`` -> ``usagecasual``).
    One word per column and value keeps "usage: Formal" apart from a title saying "formal" in the
    word and character n-gram hashes. Columns match case- and punctuation-insensitively
    (``baseColour`` = ``base_colour``); a missing column or an empty value adds nothing, so a
    catalog without them gets the plain title. NaN is missing too: MLflow's schema enforcement turns
    a pyfunc request's null into it.
    """
    found = tables.source_columns(source) if columns else {}
    words = []
    for column in columns:
        value = found.get(tables.column_key(column))
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        word = "" if missing else _ATTRIBUTE_CHARS.sub("", str(value).casefold())[:MAX_ATTRIBUTE_CHARS]
        if word:
            words.append(tables.column_key(column) + word)
    return " ".join([title, *words]) if words else title


def resize_pil(image: Image.Image, size: int, mode: str = "pad") -> Image.Image:
    """Resize a Pillow image to ``size`` x ``size`` RGB the way the model expects.

    ``pad`` letterboxes with white (:data:`PAD_VALUE`), ``crop`` centre-crops; both keep the aspect
    ratio. :func:`decode_and_resize` does the same in TensorFlow for serving.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {mode!r}")
    image = image.convert("RGB")
    if mode == "pad":
        return ImageOps.pad(image, (size, size), method=Image.Resampling.BILINEAR,
                            color=(PAD_VALUE,) * 3, centering=(0.5, 0.5))
    return ImageOps.fit(image, (size, size), method=Image.Resampling.BILINEAR, centering=(0.5, 0.5))


def decode_and_resize(image_bytes: tf.Tensor, size: int, mode: str = "pad") -> tf.Tensor:
    """TensorFlow twin of :func:`resize_pil` for raw bytes; identity-sized images pass unchanged."""
    import tensorflow as tf

    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image = tf.cast(image, tf.float32)
    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    target = tf.constant(float(size))
    if mode == "pad":
        scale = target / tf.maximum(height, width)
    else:
        scale = target / tf.minimum(height, width)
    new_h = tf.maximum(1, tf.cast(tf.round(height * scale), tf.int32))
    new_w = tf.maximum(1, tf.cast(tf.round(width * scale), tf.int32))
    resized = tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear")
    if mode == "pad":
        pad_h, pad_w = size - new_h, size - new_w
        resized = tf.pad(resized - PAD_VALUE,
                         [[pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]]) + PAD_VALUE
    else:
        resized = tf.image.resize_with_crop_or_pad(resized, size, size)
    return tf.ensure_shape(tf.clip_by_value(resized, 0.0, 255.0), [size, size, 3])
