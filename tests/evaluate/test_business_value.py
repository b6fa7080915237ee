"""Business-value weights from a table, from the records, and from category frequency."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.business_value import BusinessValueTable
from ecom_kfp.contracts.labels import OTHER, Vocabulary
from ecom_kfp.evaluate.business_value import SOURCE_FREQUENCY, SOURCE_RECORDS, SOURCE_TABLE, example_weights

VOCABS = [Vocabulary(1, (OTHER, "Apparel", "Footwear")),
          Vocabulary(2, (OTHER, "Apparel > Topwear", "Footwear > Shoes", "Footwear > Sandal"))]


def _csv(tmp_path, text: str) -> str:
    path = tmp_path / "values.csv"
    path.write_text(text)
    return str(path)


def test_table_lookup_exact_finer_and_ancestor(tmp_path):
    table = BusinessValueTable.load(_csv(tmp_path, "category_path,business_value\n"
                                           "Apparel > Topwear > Tshirts,4\nApparel > Topwear > Shirts,2\n"
                                           "Footwear,7\nFootwear > Shoes,10\n"))
    assert table.value_of(("Footwear", "Shoes")) == 10.0           # exact row
    assert table.value_of(("Apparel", "Topwear")) == 3.0           # mean of finer rows
    assert table.value_of(("Footwear", "Sandal")) == 7.0           # nearest ancestor
    assert table.value_of(("Toys",)) is None


def test_table_weights_use_the_deepest_known_category(tmp_path):
    table = BusinessValueTable.load(_csv(tmp_path, "category_path,business_value\nFootwear > Shoes,10\nFootwear,7\n"))
    labels = np.array([[2, 2], [2, 3], [2, 0], [1, 1], [0, 0]])
    weights = example_weights(labels, np.ones(5), VOCABS, table)
    assert weights.source == SOURCE_TABLE
    # shoes 10; sandal -> ancestor Footwear 7; level-2 other -> level-1 Footwear 7; apparel and other -> 0
    assert weights.at(1).tolist() == [10.0, 7.0, 7.0, 0.0, 0.0]
    assert weights.at(2).tolist() == weights.at(1).tolist()
    assert weights.examples_without_value == 2


def test_parquet_table_with_list_paths(tmp_path):
    target = str(tmp_path / "values.parquet")
    uri.write_parquet(pa.table({"category_path": [["Apparel", "Topwear"]], "business_value": [3.5]}), target)
    assert BusinessValueTable.load(target).value_of(("Apparel", "Topwear")) == 3.5


def test_bad_tables_fail_naming_the_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match="--business-value"):
        BusinessValueTable.load(str(tmp_path / "nope.csv"))
    with pytest.raises(ValueError, match="missing column"):
        BusinessValueTable.load(_csv(tmp_path, "category,value\nA,1\n"))
    with pytest.raises(ValueError, match="non-numeric"):
        BusinessValueTable.load(_csv(tmp_path, "category_path,business_value\nA,lots\n"))
    unrelated = BusinessValueTable.load(_csv(tmp_path, "category_path,business_value\nToys,1\n"))
    with pytest.raises(ValueError, match="--business-value: no test example"):
        example_weights(np.array([[1, 1]]), np.ones(1), VOCABS, unrelated)


def test_record_values_then_frequency():
    labels = np.array([[1, 1], [2, 2], [2, 2], [2, 3]])
    by_records = example_weights(labels, np.array([5.0, 10.0, 10.0, 2.0]), VOCABS, None)
    assert by_records.source == SOURCE_RECORDS and by_records.at(2).tolist() == [5.0, 10.0, 10.0, 2.0]
    # constant record values carry no information: each example weighs its class's frequency
    by_frequency = example_weights(labels, np.ones(4), VOCABS, None)
    assert by_frequency.source == SOURCE_FREQUENCY
    assert by_frequency.at(1).tolist() == [1.0, 3.0, 3.0, 3.0]
    assert by_frequency.at(2).tolist() == [1.0, 2.0, 2.0, 1.0]
