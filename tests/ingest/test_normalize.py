"""Metadata rules: column maps, titles, category paths, business values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecom_kfp.contracts.business_value import BusinessValueTable
from ecom_kfp.contracts.tables import Reject
from ecom_kfp.ingest import column_map
from ecom_kfp.ingest.column_map import ColumnMap
from ecom_kfp.ingest.normalize import CatalogProduct, Normalizer, category_path, normalize_title, parse_number
from ecom_kfp.ingest.reasons import Reason

MYNTRA = ("product_id=id,title=productDisplayName,"
          "category_path=masterCategory>subCategory>articleType,image_url=image")
ROW = {"id": "39386", "productDisplayName": "Peter England Men Party Blue Jeans", "masterCategory": "Apparel",
       "subCategory": "Bottomwear", "articleType": "Jeans", "image": "39386.jpg"}


def normalizer(text: str = MYNTRA, **kwargs) -> Normalizer:
    return Normalizer(ColumnMap.parse(text, column_map.IDENTITY), "http://cdn.test/img/", **kwargs)


def test_myntra_row_becomes_a_product() -> None:
    product = normalizer()(ROW)
    assert isinstance(product, CatalogProduct)
    assert product.product_id == "39386"
    assert product.category_path == ("Apparel", "Bottomwear", "Jeans")
    assert product.title_normalized == "peter england men party blue jeans"
    assert product.image_source == "http://cdn.test/img/39386.jpg"
    assert product.business_value == 1.0
    assert json.loads(product.source) == ROW


@pytest.mark.parametrize(("title", "reason"), [
    (None, Reason.MISSING_TITLE), ("   ", Reason.MISSING_TITLE), ("Playboy", Reason.SHORT_TITLE),
    ("Nike -- *** Shoe", Reason.SHORT_TITLE),
])
def test_title_rules(title, reason) -> None:
    outcome = normalizer()({**ROW, "productDisplayName": title})
    assert isinstance(outcome, Reject) and outcome.reason is reason and outcome.product_id == "39386"


def test_title_special_characters_become_spaces() -> None:
    assert normalize_title("Nike&#174; Air-Max 90 (Men's)") == "nike 174 air max 90 men s"
    product = normalizer()({**ROW, "productDisplayName": "Levi&#39;s   501   Jeans"})
    assert product.title == "Levi's 501 Jeans"


def test_missing_fields_are_rejected_with_their_reason() -> None:
    n = normalizer()
    assert n({**ROW, "id": ""}).reason is Reason.MISSING_PRODUCT_ID
    assert n({**ROW, "masterCategory": "", "subCategory": None, "articleType": ""}).reason is Reason.MISSING_CATEGORY
    assert n({**ROW, "image": ""}).reason is Reason.MISSING_IMAGE
    assert n({**ROW, "image": "ftp://old.host/x.jpg"}).reason is Reason.BAD_IMAGE_URL


def test_category_path_shapes() -> None:
    assert category_path("Home > Kitchen >Knives") == ("Home", "Kitchen", "Knives")
    assert category_path([["Clothing, Shoes & Jewelry", "Men"], ["Sale"]]) == ("Clothing, Shoes & Jewelry", "Men")
    assert category_path(["Home", "", None, "Bath"]) == ("Home", "Bath")
    assert category_path(None) == ()


def test_numbers() -> None:
    assert parse_number("$1,299.50") == 1299.5
    assert parse_number("$10.00 - $20.00") is None
    assert parse_number(float("nan")) is None
    assert parse_number(3) == 3.0


def test_business_value_from_a_column_and_bad_values() -> None:
    n = normalizer(MYNTRA + ",business_value=value")
    assert n({**ROW, "value": "2.5"}).business_value == 2.5
    assert n({**ROW, "value": "lots"}).reason is Reason.BAD_VALUE


def test_business_value_table_longest_prefix_and_unknown_category(tmp_path: Path) -> None:
    table_path = tmp_path / "values.csv"
    table_path.write_text("category_path,business_value\nApparel,2\napparel > bottomwear,5\n")
    n = normalizer(business_values=BusinessValueTable.load(str(table_path)))
    assert n(ROW).business_value == 5.0
    assert n({**ROW, "subCategory": "Topwear"}).business_value == 2.0
    unknown = n({**ROW, "masterCategory": "Footwear"})
    assert unknown.reason is Reason.UNKNOWN_CATEGORY and "Footwear > Bottomwear > Jeans" in unknown.detail


def test_business_value_table_json_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "v.json"
    good.write_text(json.dumps({"Apparel > Topwear": 3}))
    assert BusinessValueTable.load(str(good)).lookup(["Apparel", "Topwear", "Shirts"]) == 3.0
    bad = tmp_path / "v.csv"
    bad.write_text("category,value\nA,1\n")
    with pytest.raises(ValueError, match="--business-value .* needs columns"):
        BusinessValueTable.load(str(bad))
    with pytest.raises(FileNotFoundError, match="--business-value"):
        BusinessValueTable.load(str(tmp_path / "missing.csv"))


def test_column_map_parsing_and_checks() -> None:
    cmap = ColumnMap.parse("image_url=imUrl|imageURL", column_map.AMAZON)
    assert cmap.get({"imageURL": ["u"]}, "image_url") == ["u"]
    assert cmap.get({"imUrl": "v", "imageURL": ["u"]}, "image_url") == "v"
    with pytest.raises(ValueError, match="--column-map field 'colour' is unknown"):
        ColumnMap.parse("colour=c", column_map.IDENTITY)
    with pytest.raises(ValueError, match="is not FIELD=COLUMN"):
        ColumnMap.parse("title", column_map.IDENTITY)
    checked = ColumnMap.parse("product_id=id,title=t,category_path=a>b,image_url=i", column_map.IDENTITY)
    kept = checked.check_columns(["id", "t", "a", "b", "i"])
    assert "brand" not in kept.specs  # optional default dropped when the catalog lacks it
    with pytest.raises(ValueError, match="field 'category_path' needs column"):
        checked.check_columns(["id", "t", "a", "i"])


def test_level_names_given_as_lists_are_not_split_and_whitespace_is_normalised() -> None:
    assert category_path(["Tops > Tees", "V-neck"]) == ("Tops > Tees", "V-neck")
    assert category_path("Tops > Tees") == ("Tops", "Tees")  # a string path is split
    assert category_path(["Men\nShirts", "Formal\u2028Wear", "Slim\u2029 fit\x85x"]) == (
        "Men Shirts", "Formal Wear", "Slim fit x")


@pytest.mark.parametrize("level", ["Bad\x00name", "Bell\x07", "Right\u202eto-left", "Zero\u200bwidth",
                                   "Private\ue000use"])
def test_control_and_format_characters_in_a_level_are_rejected(level: str) -> None:
    normalizer = Normalizer(ColumnMap.parse("", column_map.IDENTITY), "http://images.example/")
    record = {"product_id": "1", "title": "Red cotton shirt", "category_path": ["Apparel", level],
              "image_url": "a.jpg"}
    outcome = normalizer(record)
    assert isinstance(outcome, Reject) and outcome.reason is Reason.BAD_CATEGORY
    assert "level 2" in outcome.detail


def test_a_level_holding_the_class_name_separator_is_rejected() -> None:
    """["Tops > Tees", "V-neck"] and ["Tops", "Tees > V-neck"] would both be class "Tops > Tees > V-neck"
    at level 2, and evaluate would read that name back as a three-level path."""
    normalizer = Normalizer(ColumnMap.parse("", column_map.IDENTITY), "http://images.example/")
    outcomes = [normalizer({"product_id": "1", "title": "Red cotton shirt", "category_path": path,
                            "image_url": "a.jpg"}) for path in (["Tops > Tees", "V-neck"], ["Tops", "Tees > V-neck"])]
    assert all(isinstance(o, Reject) and o.reason is Reason.BAD_CATEGORY for o in outcomes)
    assert "level 1 'Tops > Tees' holds ' > '" in outcomes[0].detail
    assert "level 2 'Tees > V-neck'" in outcomes[1].detail
    kept = [normalizer({"product_id": "1", "title": "Red cotton shirt", "category_path": path, "image_url": "a.jpg"})
            for path in ("Tops > Tees > V-neck", ["Tops>Tees", "V-neck"], ["Tops", "Tees", "V-neck"])]
    assert [p.category_path for p in kept] == [("Tops", "Tees", "V-neck"), ("Tops>Tees", "V-neck"),
                                                ("Tops", "Tees", "V-neck")]


def test_joiners_that_scripts_need_are_kept() -> None:
    normalizer = Normalizer(ColumnMap.parse("", column_map.IDENTITY), "http://images.example/")
    record = {"product_id": "1", "title": "Red cotton shirt", "category_path": ["Apparel", "\u0915\u094d\u200d\u0937"],
              "image_url": "a.jpg"}
    assert isinstance(normalizer(record), CatalogProduct)
