"""Records serialized by RecordSerializer parse exactly as FeatureSpec.serialize's, in the same bytes everywhere."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ecom_kfp.contracts.features import FeatureSpec
from ecom_kfp.tfrecord_build.records import RENEW_EVERY, RecordSerializer

SPEC = FeatureSpec(num_levels=3, title_vector_dim=4)
RECORDS = [
    dict(image_jpeg=b"\xff\xd8\xff\xe0jpeg", title="Puma Men Blue Shoes", title_vector=[0.25, -1.5, 3.0, 1e-7],
         labels=[1, 7, 0], business_value=1.75, product_id="p1", group_id="g1"),
    dict(image_jpeg=b"", title="", title_vector=[0.0] * 4, labels=[0, 0, 0], business_value=0.0, product_id="",
         group_id=""),
    dict(image_jpeg=bytes(range(256)) * 40, title="Café Crème – coton ✓ 😀", title_vector=[1.0, 2.0, 3.0, 4.0],
         labels=[2**40, 3, 12], business_value=-2.5, product_id="ид-9", group_id="группа"),
]


def test_records_parse_as_the_feature_spec_serializes_them() -> None:
    from tensorflow.core.example import example_pb2

    serializer = RecordSerializer(SPEC)
    # In both orders, so no value of one record leaks into the next; past several renewals of the
    # Example, so the record that triggers one is written whole (the renewal once blanked it).
    sequence = (RECORDS + RECORDS[::-1]) * (RENEW_EVERY // 2)
    for i, record in enumerate(sequence):
        record = {**record, "product_id": f"{record['product_id']}#{i}"}
        assert (example_pb2.Example.FromString(serializer.serialize(**record))
                == example_pb2.Example.FromString(SPEC.serialize(**record))), i


def test_serialized_bytes_do_not_depend_on_the_process() -> None:
    """Proto maps serialize in a per-process hash order unless asked for sorted keys."""
    code = ("from ecom_kfp.contracts.features import FeatureSpec;"
            "from ecom_kfp.tfrecord_build.records import RecordSerializer;"
            "s = RecordSerializer(FeatureSpec(num_levels=3, title_vector_dim=4));"
            "print(s.serialize(image_jpeg=b'x', title='t', title_vector=[1.0] * 4, labels=[1, 2, 3],"
            " business_value=1.0, product_id='p', group_id='g').hex())")
    outputs = {subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
               for _ in range(3)}
    assert len(outputs) == 1


def test_wrong_lengths_are_refused() -> None:
    serializer = RecordSerializer(SPEC)
    with pytest.raises(ValueError, match="expected 3 labels"):
        serializer.serialize(**{**RECORDS[0], "labels": [1, 2]})
    with pytest.raises(ValueError, match="title vector of 4"):
        serializer.serialize(**{**RECORDS[0], "title_vector": [1.0] * 5})


@pytest.mark.parametrize("image_size, levels", [(32, 3), (224, 4)])
def test_the_counted_record_size_is_the_serialized_size(dedupe_output, tmp_path, image_size: int, levels: int) -> None:
    """The global step counts record sizes without TensorFlow; real records are within 1% of the count."""
    from ecom_kfp.tfrecord_build.inputs import read_products
    from ecom_kfp.tfrecord_build.writer import SIZE_SAMPLE, RecordInput, WriterSettings, _stored_image, estimate_record_bytes

    spec = FeatureSpec(num_levels=levels, title_vector_dim=64, image_size=image_size)
    settings = WriterSettings(spec, 90, str(tmp_path), seed=0, infer_epochs=1)
    products, _ = read_products(dedupe_output.layout.root)
    records = [RecordInput(p.product_id, p.title, p.image_uri, tuple(range(1, levels + 1)), (None,) * levels,
                           p.business_value, p.group_id, " > ".join(p.category_path)) for p in products[:SIZE_SAMPLE]]
    serializer = RecordSerializer(spec)
    vector = [0.5] * 64
    actual = [len(r.serialize(serializer, _stored_image(r, settings, []), vector)) for r in records]
    assert estimate_record_bytes(records, settings) == pytest.approx(sum(actual) / len(actual), rel=0.01)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_serializing_many_records_does_not_grow_memory() -> None:
    """One serializer writes 4,000 records of 10 KB: the process may grow by a few MB, not by their 40 MB.

    Resident memory, because the upb protobuf runtime's arenas are outside what ``tracemalloc`` sees.
    Measured: 42 MB of growth when one Example was kept for every record (each assigned image stayed
    in its arena); under 0.1 MB with the Example renewed every ``RENEW_EVERY`` records.
    """
    serializer = RecordSerializer(SPEC)
    record = {**RECORDS[2], "image_jpeg": bytes(range(256)) * 40}
    for _ in range(RENEW_EVERY):  # the first arena and the allocator's pools are in place before measuring
        serializer.serialize(**record)
    before = _resident_bytes()
    for i in range(4000):
        serializer.serialize(**{**record, "image_jpeg": i.to_bytes(4, "big") + record["image_jpeg"]})
    growth = _resident_bytes() - before
    assert growth < 8 * 2**20
