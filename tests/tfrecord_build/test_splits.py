"""Splits by duplicate group: deterministic, leak-free, at the configured shares."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from ecom_kfp.tfrecord_build.config import ConfigError, parse_fractions
from ecom_kfp.tfrecord_build.inputs import Product
from ecom_kfp.tfrecord_build.splits import assign_splits

TOPS = ["Apparel", "Footwear", "Accessories", "Personal Care"]


def _products(n: int, seed: int = 0) -> list[Product]:
    rng = random.Random(seed)
    return [Product(f"p{i}", f"title {i}", (rng.choice(TOPS[:3]) if i % 50 else TOPS[3], "x"), 1.0, f"/img/{i}.jpg",
                    f"g{rng.randrange(n // 3)}") for i in range(n)]


def test_splits_are_deterministic_and_independent_of_input_order() -> None:
    products = _products(900)
    shuffled = products[:]
    random.Random(1).shuffle(shuffled)
    fractions = (0.7, 0.15, 0.15)
    assert assign_splits(products, fractions, salt="s") == assign_splits(shuffled, fractions, salt="s")
    assert assign_splits(products, fractions, salt="s", stratify=True) == \
        assign_splits(shuffled, fractions, salt="s", stratify=True)
    assert assign_splits(products, fractions, salt="s") != assign_splits(products, fractions, salt="other")


@pytest.mark.parametrize("stratify", [False, True])
def test_no_group_crosses_splits(stratify: bool) -> None:
    products = _products(900)
    split_of = assign_splits(products, (0.7, 0.15, 0.15), salt="s", stratify=stratify)
    splits_of_group = defaultdict(set)
    for p in products:
        splits_of_group[p.group_id].add(split_of[p.product_id])
    assert all(len(s) == 1 for s in splits_of_group.values())
    assert set(split_of) == {p.product_id for p in products}


def test_hash_split_is_near_the_shares_and_stable_when_products_are_added() -> None:
    products = [Product(f"p{i}", "t", ("A",), 1.0, "u", f"g{i}") for i in range(6000)]
    split_of = assign_splits(products, (0.7, 0.15, 0.15), salt="s")
    shares = Counter(split_of.values())
    assert abs(shares["train"] / 6000 - 0.7) < 0.03 and abs(shares["test"] / 6000 - 0.15) < 0.03
    more = assign_splits(products + [Product("new", "t", ("A",), 1.0, "u", "gnew")], (0.7, 0.15, 0.15), salt="s")
    assert all(more[pid] == split for pid, split in split_of.items())


def test_stratified_split_gives_every_top_level_category_its_exact_share() -> None:
    products = [Product(f"p{i}", "t", (TOPS[i % 4],), 1.0, "u", f"g{i}") for i in range(400)]  # 100 per category
    split_of = assign_splits(products, (0.6, 0.2, 0.2), salt="s", stratify=True)
    per_top = Counter((p.category_path[0], split_of[p.product_id]) for p in products)
    for top in TOPS:
        assert (per_top[(top, "train")], per_top[(top, "val")], per_top[(top, "test")]) == (60, 20, 20)


@pytest.mark.parametrize("text", ["0.7,0.3", "0.5,0.5,0.5", "a,b,c", "0,0.5,0.5", "-0.1,0.6,0.5"])
def test_bad_split_fractions_name_the_flag(text: str) -> None:
    with pytest.raises(ConfigError, match="--split-fractions"):
        parse_fractions(text)


def test_split_fractions_parse() -> None:
    assert parse_fractions("0.8,0.1,0.1") == (0.8, 0.1, 0.1)


@pytest.mark.parametrize("stratify", [False, True])
def test_cross_validation_folds_test_every_product_once_and_keep_groups_whole(stratify: bool) -> None:
    products = _products(900)
    builds = [assign_splits(products, (0.7, 0.15, 0.15), salt="s", stratify=stratify, folds=5, fold=k)
              for k in range(5)]
    tested = Counter(pid for split_of in builds for pid, split in split_of.items() if split == "test")
    assert set(tested) == {p.product_id for p in products} and set(tested.values()) == {1}
    groups = len({p.group_id for p in products})
    for split_of in builds:
        splits_of_group = defaultdict(set)
        for p in products:
            splits_of_group[p.group_id].add(split_of[p.product_id])
        assert all(len(s) == 1 for s in splits_of_group.values())
        test_groups = sum(s == {"test"} for s in splits_of_group.values())
        assert abs(test_groups - groups / 5) <= (4 if stratify else 1)  # equal folds (per stratum)
        shares = Counter(split_of.values())
        assert 0.1 < shares["val"] / (shares["train"] + shares["val"]) < 0.25  # 0.15 / 0.85 of the rest


def test_cross_validation_settings_are_checked() -> None:
    from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig

    with pytest.raises(ConfigError, match="--cv-folds"):
        TFRecordBuildConfig(products="p", out="o", cv_folds=1)
    with pytest.raises(ConfigError, match="--cv-fold=5"):
        TFRecordBuildConfig(products="p", out="o", cv_folds=5, cv_fold=5)
