"""Catalog readers on small files written in ``tmp_path`` (and one ``gs://`` catalog)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecom_kfp import uri
from ecom_kfp.ingest.reasons import Reason
from ecom_kfp.ingest.readers import BadRecord, RawRecord, open_catalog

AMAZON_2014 = [
    {"asin": "B0001", "title": "Levi's Men 501 Original Fit Jeans", "price": 39.99, "imUrl": "http://x/1.jpg",
     "salesRank": {"Clothing": 1234}, "categories": [["Clothing, Shoes & Jewelry", "Men", "Jeans"], ["Sale"]]},
    {"asin": "B0002", "title": "Nike Running Shoe Air Zoom", "imUrl": "http://x/2.jpg",
     "related": {"also_bought": ["B0001"]},
     "categories": [["Clothing, Shoes & Jewelry", "Men", "Shoes"]], "brand": "Nike"},
    {"asin": "B0003", "title": "Casio Digital Sports Watch", "imUrl": "http://x/3.jpg",
     "categories": [["Clothing, Shoes & Jewelry", "Watches"]], "salesRank": {}},
]


def read_all(catalog_uri: str, fmt: str = "auto"):
    with open_catalog(catalog_uri, fmt) as catalog:
        records = list(catalog)
        return catalog, records


def test_jsonl_reads_objects_and_rejects_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text('{"product_id": "1", "title": "a b c"}\n\n{not json}\n[1, 2]\n'
                    '{"product_id": "2", "title": "d e f"}', encoding="utf-8")
    catalog, records = read_all(str(path))
    assert catalog.format == "jsonl"
    assert [type(r) for r in records] == [RawRecord, BadRecord, BadRecord, RawRecord]
    assert [r.position for r in records] == [1, 3, 4, 5]  # line numbers; line 2 is blank
    assert records[1].reason is Reason.MALFORMED_LINE and "invalid JSON" in records[1].detail
    assert "a list, not an object" in records[2].detail
    assert records[3].fields == {"product_id": "2", "title": "d e f"}
    assert not catalog.truncated


def test_amazon_2014_python_literals_in_a_gzip_cut_mid_stream(tmp_path: Path) -> None:
    """The 2014 dumps are Python dict reprs; a download cut off mid-file must not stop the run."""
    text = "".join(repr(r) + "\n" for r in AMAZON_2014).encode()
    whole = gzip.compress(text)
    path = tmp_path / "meta_Clothing.json.gz"
    # Cut inside the compressed stream so the third record is incomplete.
    for cut in range(len(whole) - 1, 0, -1):
        path.write_bytes(whole[:cut])
        catalog, records = read_all(str(path))
        if len(records) == 3 and isinstance(records[2], BadRecord):
            break
    assert catalog.format == "amazon" and catalog.truncated
    assert [r.fields["asin"] for r in records[:2]] == ["B0001", "B0002"]
    assert records[0].fields["categories"][0] == ["Clothing, Shoes & Jewelry", "Men", "Jeans"]
    assert records[0].fields["salesRank"] == {"Clothing": 1234}
    assert records[2].reason is Reason.TRUNCATED_FILE
    assert "ends mid-record" in records[2].detail


def test_amazon_2018_json_with_multi_member_gzip(tmp_path: Path) -> None:
    rows = [{"asin": "A1", "title": "x y z", "category": ["Home", "Kitchen"], "imageURLHighRes": ["http://x/a.jpg"]},
            {"asin": "A2", "title": "u v w", "category": ["Home"], "imageURL": []}]
    path = tmp_path / "meta.json.gz"
    # `cat a.gz b.gz` is a valid gzip file with two members.
    path.write_bytes(gzip.compress((json.dumps(rows[0]) + "\n").encode())
                     + gzip.compress((json.dumps(rows[1]) + "\n").encode()))
    catalog, records = read_all(str(path))
    assert catalog.format == "amazon" and not catalog.truncated
    assert [r.fields["asin"] for r in records] == ["A1", "A2"]


def test_amazon_rejects_lines_that_are_neither_json_nor_literals(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text(repr(AMAZON_2014[0]) + "\n{'asin': 'B9', 'title': \n", encoding="utf-8")
    _, records = read_all(str(path), "amazon")
    assert isinstance(records[0], RawRecord)
    assert records[1].reason is Reason.MALFORMED_LINE and "neither JSON nor a Python literal" in records[1].detail


def test_csv_rows_with_wrong_field_count_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text('id,title,image\n1,"Blue, slim jeans",1.jpg\n2,too,many,fields\n\n3,Plain tee,3.jpg\n',
                    encoding="utf-8")
    catalog, records = read_all(str(path))
    assert catalog.format == "csv" and catalog.columns == ["id", "title", "image"]
    assert records[0].fields == {"id": "1", "title": "Blue, slim jeans", "image": "1.jpg"}
    assert records[1].reason is Reason.MALFORMED_LINE and "4 fields, header has 3" in records[1].detail
    assert records[2].fields["id"] == "3"


def test_csv_repeating_a_header_column_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,id\n1,2\n")
    with pytest.raises(ValueError, match="--catalog .* repeats a column"):
        read_all(str(path))


def test_parquet_rows_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "catalog.parquet"
    pq.write_table(pa.table({"id": [7, 8], "name": ["a b c", None]}), path)
    catalog, records = read_all(str(path))
    assert catalog.format == "parquet" and catalog.columns == ["id", "name"]
    assert [r.fields for r in records] == [{"id": 7, "name": "a b c"}, {"id": 8, "name": None}]


def test_broken_parquet_fails_fast_naming_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "catalog.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(ValueError, match="--catalog .* not a readable Parquet file"):
        read_all(str(path))


def test_missing_catalog_and_bad_format_fail_fast(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--catalog"):
        read_all(str(tmp_path / "nope.jsonl"))
    (tmp_path / "c.txt").write_text("hello\n")
    with pytest.raises(ValueError, match="--format"):
        read_all(str(tmp_path / "c.txt"))
    with pytest.raises(ValueError, match="--format 'xml'"):
        read_all(str(tmp_path / "c.txt"), "xml")


def test_empty_catalog_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    _, records = read_all(str(path))
    assert records == []


def test_catalog_on_gcs(gcs_bucket: str) -> None:
    catalog_uri = f"{gcs_bucket}/catalogs/meta.json.gz"
    uri.write_bytes(catalog_uri, gzip.compress("".join(repr(r) + "\n" for r in AMAZON_2014).encode()))
    catalog, records = read_all(catalog_uri)
    assert catalog.format == "amazon"
    assert [r.fields["asin"] for r in records] == ["B0001", "B0002", "B0003"]


_CSV_MAP = "product_id=id,title=title,category_path=category,image_url=image"


def _ingest_counts(catalog: Path, tmp_path: Path, **kwargs):
    """Run the stage on ``catalog`` (no image is fetched: references are local and refused)."""
    from ecom_kfp.ingest import IngestConfig, run

    from .conftest import read_outputs

    report = run(IngestConfig(catalog=str(catalog), out=str(tmp_path / "out"), progress=False, **kwargs))
    products, rejects = read_outputs(tmp_path / "out")
    assert report.accepted + report.rejected == report.input_records == len(products) + len(rejects)
    return report, rejects


def test_bad_utf8_in_a_csv_is_a_malformed_line_found_while_reading(tmp_path: Path) -> None:
    """Before: the surrogate-escaped bytes reached the Parquet write and failed the whole run."""
    path = tmp_path / "c.csv"
    path.write_bytes(b"id,title,category,image\n1,Red cotton shirt,A,a.jpg\n2,Bad \xff\xfe shirt,A,b.jpg\n"
                     b"3,Blue cotton shirt,A,c.jpg\n")
    _, records = read_all(str(path))
    assert [type(r) for r in records] == [RawRecord, BadRecord, RawRecord]
    assert (records[1].position, records[1].reason, records[1].detail) == (3, Reason.MALFORMED_LINE, "not UTF-8 text")
    report, rejects = _ingest_counts(path, tmp_path, column_map=_CSV_MAP)
    assert report.input_records == 3
    assert [(r["product_id"], r["reason"], r["detail"]) for r in rejects if r["reason"] == "malformed_line"] == [
        (None, "malformed_line", "line 3: not UTF-8 text")]


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "\\udc80 tail"])
def test_a_lone_surrogate_escape_in_json_is_a_malformed_line(tmp_path: Path, escape: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"product_id": "1", "title": "Red cotton shirt", "category_path": "A", "image_url": "a.jpg"}\n'
                    '{"product_id": "2", "title": "Bad ' + escape + ' shirt", "category_path": "A", "image_url": "b"}\n'
                    '{"product_id": "3", "title": "Pair \\ud83d\\ude00 ok shirt", "category_path": "A", "image_url": "c"}\n')
    _, records = read_all(str(path))
    assert [type(r) for r in records] == [RawRecord, BadRecord, RawRecord]  # a surrogate pair is fine
    assert records[1].position == 2 and "lone surrogate" in records[1].detail
    report, _ = _ingest_counts(path, tmp_path)
    assert report.rejects_by_reason["malformed_line"] == 1


def test_an_unterminated_quote_does_not_swallow_the_rows_after_it(tmp_path: Path) -> None:
    """Before: 8 data rows gave 1 product + 1 reject, 6 rows accounted nowhere."""
    rows = [f'{i},Cotton shirt model {i},Apparel,{i}.jpg' for i in range(1, 9)]
    rows[1] = '2,"Cotton shirt model 2,Apparel,2.jpg'  # the quote never closes
    path = tmp_path / "c.csv"
    path.write_text("id,title,category,image\n" + "\n".join(rows) + "\n")
    _, records = read_all(str(path))
    assert len(records) == 8
    assert [r.position for r in records] == list(range(2, 10))
    assert [type(r) for r in records] == [RawRecord, BadRecord, *[RawRecord] * 6]
    assert "never closed" in records[1].detail
    report, _ = _ingest_counts(path, tmp_path, column_map=_CSV_MAP)
    assert report.input_records == 8 and report.rejects_by_reason["malformed_line"] == 1


def test_a_quoted_field_spanning_lines_is_still_one_record(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('id,title,notes\n1,Red shirt,"two\nlines"\n2,"Odd ""quoted"", shirt",x\n3,Blue shirt,"a\nb\nc"\n'
                    '4,"open,x\n5,Green shirt,y\n')
    _, records = read_all(str(path))
    assert [(type(r).__name__, r.position) for r in records] == [
        ("RawRecord", 2), ("RawRecord", 4), ("RawRecord", 5), ("BadRecord", 8), ("RawRecord", 9)]
    assert records[0].fields["notes"] == "two\nlines" and records[2].fields["notes"] == "a\nb\nc"
    assert records[1].fields["title"] == 'Odd "quoted", shirt'
