"""The TFRecord build splits by dedupe's leak groups and keeps label conflicts out of the test split."""

from __future__ import annotations

from .conftest import dedupe, jpeg, picture

from ecom_kfp.tfrecord_build.inputs import read_products
from ecom_kfp.tfrecord_build.splits import assign_splits


def test_build_splits_by_split_group_and_never_tests_a_label_conflict(make_layout, tmp_path):
    same = jpeg(picture(9))
    products = [{"product_id": f"t{i}", "title": "Generic Black Socks", "image": jpeg(picture(i))} for i in range(3)]
    products += [{"product_id": "top", "title": "Green Top", "image": same, "category_path": ["Apparel", "Tops"]},
                 {"product_id": "tee", "title": "Green Tee", "image": same, "category_path": ["Apparel", "Tshirts"]}]
    products += [{"product_id": f"solo{i}", "title": f"solo {i}", "image": jpeg(picture(20 + i))} for i in range(20)]
    kept, dups, _, _ = dedupe(make_layout(products), tmp_path / "out")
    assert dups == [] and len({kept[f"t{i}"]["split_group"] for i in range(3)}) == 1
    records, rejects = read_products(str(tmp_path / "out"))
    assert not rejects and {p.product_id for p in records if p.label_conflict} == {"top", "tee"}
    tested = set()
    for salt in map(str, range(30)):
        split_of = assign_splits(records, (0.4, 0.2, 0.4), salt=salt)
        assert len({split_of[f"t{i}"] for i in range(3)}) == 1, "a leak group never crosses splits"
        assert split_of["top"] == split_of["tee"] != "test"
        tested |= {pid for pid, split in split_of.items() if split == "test"}
    assert {"t0", "solo0"} <= tested, "the other groups do reach the test split"
