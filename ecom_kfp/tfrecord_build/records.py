"""Serialized ``tf.train.Example`` records of a :class:`~ecom_kfp.contracts.features.FeatureSpec`, fast.

Building an Example of ten features from fresh proto objects costs about 50 us of Python per
record, as much as gzipping it. :class:`RecordSerializer` builds one Example with
:meth:`FeatureSpec.serialize` and refills its values for every record (about 15 us). The record's
keys and value types still come from the feature spec alone: the serializer checks at
construction that what it writes parses to exactly what ``FeatureSpec.serialize`` gives. Map keys
are written sorted, so the same records give the same bytes in every process (proto maps
otherwise serialize in a per-process hash order).

The refilled Example is replaced by a fresh one every :data:`RENEW_EVERY` records: with the upb
protobuf runtime every value assigned to a message is copied into the message's arena, which
is freed only with the message, so one Example kept for a whole shard grew by each record's size
(about 5 KB per record, the largest part of a write piece's growth with its record count).
"""

from __future__ import annotations

from collections.abc import Sequence

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

#: Records serialized with one Example before it is replaced (its arena then holds at most this many records' values).
RENEW_EVERY = 256


class RecordSerializer:
    """``FeatureSpec.serialize`` for many records (same arguments, same parsed Example).

    Args:
        spec: The records' feature spec.

    Raises:
        ValueError: the spec's Example does not have the layout this serializer fills
            (a contract change this module has not followed).
    """

    def __init__(self, spec: FeatureSpec) -> None:
        from tensorflow.core.example import example_pb2

        blank = dict(image_jpeg=b"", title="", title_vector=[0.0] * spec.title_vector_dim,
                     labels=[0] * spec.num_levels, business_value=0.0, product_id="", group_id="")
        parse = example_pb2.Example.FromString
        self._blank = spec.serialize(**blank)
        feature = parse(self._blank).features.feature
        filled = {IMAGE, TITLE, TITLE_VECTOR, BUSINESS_VALUE, PRODUCT_ID, GROUP_ID, CATEGORY_PATH, *spec.label_keys}
        if set(feature) != filled:
            raise ValueError(f"RecordSerializer fills {sorted(filled)} but FeatureSpec.serialize writes "
                             f"{sorted(feature)}; update ecom_kfp/tfrecord_build/records.py to the feature spec")
        # Touching a value list of the wrong kind (in _renew) would have changed that feature's type.
        self._label_keys = spec.label_keys
        self._renew()
        probe = dict(image_jpeg=b"\xff\xd8", title="probe title ✓", title_vector=[0.5] * spec.title_vector_dim,
                     labels=list(range(1, spec.num_levels + 1)), business_value=2.0, product_id="p", group_id="g",
                     category_path="A > B")
        if parse(self.serialize(**probe)) != parse(spec.serialize(**probe)):
            raise ValueError("RecordSerializer no longer writes what FeatureSpec.serialize writes; update "
                             "ecom_kfp/tfrecord_build/records.py to the feature spec")

    def serialize(self, *, image_jpeg: bytes, title: str, title_vector: Sequence[float], labels: Sequence[int],
                  business_value: float, product_id: str, group_id: str, category_path: str = "") -> bytes:
        """One record, as :meth:`FeatureSpec.serialize` would encode it.

        Raises:
            ValueError: wrong number of labels or title vector values.
        """
        if len(labels) != len(self._labels):
            raise ValueError(f"expected {len(self._labels)} labels, got {len(labels)}")
        if len(title_vector) != len(self._title_vector):
            raise ValueError(f"expected title vector of {len(self._title_vector)}, got {len(title_vector)}")
        self._image[0] = image_jpeg
        self._title[0] = title.encode("utf-8")
        self._title_vector[:] = title_vector
        self._business_value[0] = float(business_value)
        self._product_id[0] = product_id.encode("utf-8")
        self._group_id[0] = group_id.encode("utf-8")
        self._category_path[0] = category_path.encode("utf-8")
        for values, label in zip(self._labels, labels):
            values[0] = int(label)
        record = self._example.SerializeToString(deterministic=True)
        self._uses += 1
        if self._uses >= RENEW_EVERY:
            self._renew()
        return record

    def _renew(self) -> None:
        """A fresh Example from the blank record (with an empty arena), and its value lists to fill."""
        from tensorflow.core.example import example_pb2

        self._example = example_pb2.Example.FromString(self._blank)
        self._uses = 0
        feature = self._example.features.feature
        self._image = feature[IMAGE].bytes_list.value
        self._title = feature[TITLE].bytes_list.value
        self._title_vector = feature[TITLE_VECTOR].float_list.value
        self._business_value = feature[BUSINESS_VALUE].float_list.value
        self._product_id = feature[PRODUCT_ID].bytes_list.value
        self._group_id = feature[GROUP_ID].bytes_list.value
        self._category_path = feature[CATEGORY_PATH].bytes_list.value
        self._labels = [feature[key].int64_list.value for key in self._label_keys]
