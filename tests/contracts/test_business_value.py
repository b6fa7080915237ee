"""The one business value table reader ingest and evaluate share: formats, matching, bad tables."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.business_value import BusinessValueTable


def test_csv_json_and_parquet_read_the_same_table(tmp_path):
    (tmp_path / "v.csv").write_text("category_path,business_value\nApparel > Topwear,3\nFootwear,7\n")
    (tmp_path / "v.json").write_text(json.dumps({"Apparel > Topwear": 3, "Footwear": 7}))
    uri.write_parquet(pa.table({"category_path": [["Apparel", "Topwear"], ["Footwear"]],
                                "business_value": [3.0, 7.0]}), str(tmp_path / "v.parquet"))
    tables = [BusinessValueTable.load(str(tmp_path / name)) for name in ("v.csv", "v.json", "v.parquet")]
    assert tables[0].values == tables[1].values == tables[2].values
    assert tables[0].values == {("apparel", "topwear"): 3.0, ("footwear",): 7.0}


def test_lookup_is_longest_prefix_and_value_of_also_averages_finer_rows(tmp_path):
    (tmp_path / "v.csv").write_text("category_path,business_value\n"
                                    "Apparel > Topwear > Tshirts,4\nApparel > Topwear > Shirts,2\nFootwear,7\n")
    table = BusinessValueTable.load(str(tmp_path / "v.csv"))
    # a product's full path: longest prefix, case and spacing ignored
    assert table.lookup(["FOOTWEAR", "Shoes ", "Sports  Shoes"]) == 7.0
    assert table.lookup(["Apparel", "Topwear"]) is None
    # a coarser class (evaluate's levels): the mean of the rows below it
    assert table.value_of(("apparel", "topwear")) == 3.0
    assert table.value_of(("Footwear", "Sandal")) == 7.0
    assert table.value_of(("Toys",)) is None


@pytest.mark.parametrize("text, message", [
    ("category_path,business_value\nApparel,-1\n", "invalid value '-1'"),
    ("category_path,business_value\nApparel,inf\n", "invalid value 'inf'"),
    ("category_path,business_value\n >,1\n", "has no category path"),
    ("category_path,business_value\n", "the table has no rows"),
])
def test_bad_entries_fail_naming_the_flag(tmp_path, text, message):
    (tmp_path / "v.csv").write_text(text)
    with pytest.raises(ValueError, match=f"--business-value .*{message}"):
        BusinessValueTable.load(str(tmp_path / "v.csv"))


def test_json_must_be_an_object(tmp_path):
    (tmp_path / "v.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="--business-value .* JSON must be an object"):
        BusinessValueTable.load(str(tmp_path / "v.json"))
