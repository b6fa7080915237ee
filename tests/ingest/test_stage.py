"""The ingest stage end to end: real catalogs, real image server, every record accounted for."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.ingest import IngestConfig, run
from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.testing.image_server import Fault, ServerHandle
from tests.ingest.helpers import MYNTRA_COLUMN_MAP, TRUSTED, read_outputs

#: product id -> (image name, fault) ; expected reason (None = accepted)
IMAGE_CASES = {
    "ok-a": ("a.jpg", None, None),
    "ok-same": ("same.jpg", None, None),
    "ok-png": ("alpha.png", None, None),
    "ok-retried": ("b.jpg", Fault.SERVER_ERROR_ONCE, None),
    "dead": ("c.jpg", Fault.NOT_FOUND, "not_found"),
    "html": ("c.jpg", Fault.HTML, "not_an_image"),
    "cut": ("d.jpg", Fault.TRUNCATED_FILE, "truncated_image"),
    "slow": ("d.jpg", Fault.SLOW, "timeout"),
    "tiny": ("e.jpg", Fault.TINY, "too_small"),
    "broken": ("e.jpg", Fault.CORRUPT, "corrupt_image"),
}


def write_catalog(path: Path, server: ServerHandle) -> dict[str, str | None]:
    """A JSON-lines catalog with every kind of problem; returns product id -> expected reason."""
    lines, expected = [], {}
    for pid, (name, fault, reason) in IMAGE_CASES.items():
        lines.append(json.dumps({"product_id": pid, "title": f"Classic cotton shirt {pid}",
                                 "category_path": "Apparel > Topwear > Shirts", "price": "$12.50",
                                 "image_url": server.url(name, fault)}))
        expected[pid] = reason
    base = {"title": "Slim fit denim jeans", "category_path": ["Apparel", "Bottomwear"],
            "image_url": server.url("a.jpg")}
    for pid, record, reason in [
        ("short", {**base, "title": "Jeans!!"}, "short_title"),
        ("untitled", {**base, "title": None}, "missing_title"),
        ("nocat", {**base, "category_path": []}, "missing_category"),
        ("noimg", {**base, "image_url": ""}, "missing_image"),
        ("ok-a", base, "duplicate_product_id"),
    ]:
        lines.append(json.dumps({"product_id": pid, **record}))
        expected.setdefault(pid, reason)
    lines.append('{"product_id": "broken-json", ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return expected


def config(catalog: str, out: str, fetch: FetchConfig, **kwargs) -> IngestConfig:
    return IngestConfig(catalog=catalog, out=out, fetch=fetch, progress=False, **kwargs)


def test_every_record_ends_accepted_or_rejected_with_its_reason(server: ServerHandle, fast_fetch: FetchConfig,
                                                                tmp_path: Path) -> None:
    expected = write_catalog(tmp_path / "catalog.jsonl", server)
    report = run(config(str(tmp_path / "catalog.jsonl"), str(tmp_path / "out"), fast_fetch))
    products, rejects = read_outputs(tmp_path / "out")

    assert report.input_records == len(IMAGE_CASES) + 6
    assert report.accepted + report.rejected == report.input_records
    assert len(products) == report.accepted and len(rejects) == report.rejected
    assert {p["product_id"] for p in products} == {pid for pid, r in expected.items() if r is None}
    got = {(r["product_id"], r["reason"]) for r in rejects}
    assert got == {(pid, r) for pid, r in expected.items() if r is not None} | {(None, "malformed_line")} | {
        ("ok-a", "duplicate_product_id")}
    assert report.rejects_by_reason == dict(Counter(r["reason"] for r in rejects))
    assert all(r["stage"] == "ingest" and r["detail"] for r in rejects)

    by_id = {p["product_id"]: p for p in products}
    assert by_id["ok-a"]["image_sha256"] == by_id["ok-same"]["image_sha256"]
    assert by_id["ok-a"]["category_path"] == ["Apparel", "Topwear", "Shirts"]
    assert by_id["ok-a"]["price"] == 12.5 and (by_id["ok-a"]["width"], by_id["ok-a"]["height"]) == (64, 48)
    for product in products:
        assert Path(product["image_uri"]) == Path(IngestLayout(str(tmp_path / "out")).image(product["image_sha256"]))
        assert Path(product["image_uri"]).is_file()
    assert report.images.stored_new == 3 and report.images.retries >= 1
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk["accepted"] == report.accepted and on_disk["images_per_second"] > 0


def test_second_run_downloads_nothing(server: ServerHandle, fast_fetch: FetchConfig, tmp_path: Path) -> None:
    write_catalog(tmp_path / "catalog.jsonl", server)
    cfg = config(str(tmp_path / "catalog.jsonl"), str(tmp_path / "out"), fast_fetch)
    first = run(cfg)
    products_before, _ = read_outputs(tmp_path / "out")
    server.reset()
    second = run(cfg)
    products_after, _ = read_outputs(tmp_path / "out")
    # Only failed sources are tried again; every accepted image is reused.
    assert second.images.reused == first.images.fetched - first.images.failed == 4
    assert second.images.fetched == first.images.failed
    ok_urls = {server.url(n, f)[len(server.base_url):] for n, f, r in IMAGE_CASES.values() if r is None}
    assert not ok_urls & set(server.stats()["by_path"])
    assert second.images.stored_new == 0
    assert products_after == products_before


def test_a_relative_out_stores_image_paths_valid_from_anywhere(server: ServerHandle, fast_fetch: FetchConfig,
                                                               tmp_path: Path, monkeypatch) -> None:
    write_catalog(tmp_path / "catalog.jsonl", server)
    monkeypatch.chdir(tmp_path)
    run(config("catalog.jsonl", "out", fast_fetch))
    monkeypatch.chdir(tmp_path.parent)
    products, _ = read_outputs(tmp_path / "out")
    assert products and all(Path(p["image_uri"]).is_absolute() for p in products)
    assert all(Path(p["image_uri"]).is_file() and Path(p["image_uri"]).is_relative_to(tmp_path / "out")
               for p in products)


def test_shards_partition_the_catalog_and_merge_back(server: ServerHandle, fast_fetch: FetchConfig,
                                                     tmp_path: Path) -> None:
    from ecom_kfp.ingest.merge import merge_shards

    write_catalog(tmp_path / "catalog.jsonl", server)
    catalog = str(tmp_path / "catalog.jsonl")
    whole = run(config(catalog, str(tmp_path / "whole"), fast_fetch))
    shards = [run(config(catalog, str(tmp_path / f"shard{i}"), fast_fetch, shard_index=i, num_shards=3))
              for i in range(3)]
    assert sum(s.input_records for s in shards) == whole.input_records
    ids = [{p["product_id"] for p in read_outputs(tmp_path / f"shard{i}")[0]} for i in range(3)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])

    merged = merge_shards([str(tmp_path / f"shard{i}") for i in range(3)], str(tmp_path / "merged"), progress=False)
    products, rejects = read_outputs(tmp_path / "merged")
    whole_products, whole_rejects = read_outputs(tmp_path / "whole")
    assert merged.accepted + merged.rejected == merged.input_records == whole.input_records
    assert sorted(p["product_id"] for p in products) == sorted(p["product_id"] for p in whole_products)
    assert Counter(r["reason"] for r in rejects) == Counter(r["reason"] for r in whole_rejects)
    for product in products:
        assert product["image_uri"].startswith(str(tmp_path / "merged"))
        assert Path(product["image_uri"]).is_file()


def test_merging_overlapping_shards_rejects_the_repeated_products(server: ServerHandle, fast_fetch: FetchConfig,
                                                                  tmp_path: Path) -> None:
    from ecom_kfp.ingest.merge import merge_shards

    write_catalog(tmp_path / "catalog.jsonl", server)
    once = run(config(str(tmp_path / "catalog.jsonl"), str(tmp_path / "a"), fast_fetch))
    merged = merge_shards([str(tmp_path / "a"), str(tmp_path / "a")], str(tmp_path / "m"), progress=False)
    assert merged.input_records == 2 * once.input_records
    assert merged.accepted == once.accepted
    # The second copy of every accepted product, plus each copy's own duplicate reject.
    assert merged.rejects_by_reason["duplicate_product_id"] == (
        once.accepted + 2 * once.rejects_by_reason["duplicate_product_id"])


def test_empty_catalog_writes_empty_tables(fast_fetch: FetchConfig, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    report = run(config(str(tmp_path / "empty.csv"), str(tmp_path / "out"), fast_fetch))
    assert (report.input_records, report.accepted, report.rejected) == (0, 0, 0)
    products, rejects = read_outputs(tmp_path / "out")
    assert products == [] and rejects == []
    assert (tmp_path / "out" / "report.json").is_file()


def test_bad_configuration_fails_fast_naming_the_flag(tmp_path: Path, fast_fetch: FetchConfig) -> None:
    with pytest.raises(ValueError, match="--shard-index=2: must be in"):
        config("x", str(tmp_path), fast_fetch, shard_index=2, num_shards=2)
    with pytest.raises(ValueError, match="--concurrency=0: must be at least 1"):
        dataclasses.replace(fast_fetch, concurrency=0)
    with pytest.raises(FileNotFoundError, match="--catalog"):
        run(config(str(tmp_path / "nope.jsonl"), str(tmp_path / "out"), fast_fetch))


def test_gcs_catalog_images_and_output(server: ServerHandle, gcs_bucket: str, fast_fetch: FetchConfig,
                                       tmp_path: Path, image_dir: Path) -> None:
    """Catalog, relative image references and output all on ``gs://`` (the emulator)."""
    for name in ("a.jpg", "b.jpg"):
        uri.write_bytes(f"{gcs_bucket}/catalog/images/{name}", (image_dir / name).read_bytes())
    rows = [{"product_id": "1", "title": "Red cotton shirt", "category_path": "A > B", "image_url": "images/a.jpg"},
            {"product_id": "2", "title": "Blue cotton shirt", "category_path": "A > C", "image_url": "images/b.jpg"},
            {"product_id": "3", "title": "Green cotton shirt", "category_path": "A", "image_url": "images/x.jpg"}]
    uri.write_text(f"{gcs_bucket}/catalog/catalog.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    out = f"{gcs_bucket}/ingest"
    fetch = dataclasses.replace(fast_fetch, policy=dataclasses.replace(TRUSTED, allow_gcs_buckets=gcs_bucket))
    report = run(config(f"{gcs_bucket}/catalog/catalog.jsonl", out, fetch))
    assert (report.accepted, report.rejects_by_reason) == (2, {"not_found": 1})
    products, _ = read_outputs(out)
    for product in products:
        assert product["image_uri"].startswith(f"{out}/images/")
        assert uri.exists(product["image_uri"])
    assert uri.read_json(f"{out}/report.json")["accepted"] == 2


def test_business_value_table_rejects_unknown_categories(server: ServerHandle, fast_fetch: FetchConfig,
                                                         tmp_path: Path) -> None:
    rows = [{"product_id": "1", "title": "Red cotton shirt", "category_path": "Apparel > Topwear",
             "image_url": server.url("a.jpg")},
            {"product_id": "2", "title": "Tractor tyre 18 inch", "category_path": "Farm > Tyres",
             "image_url": server.url("b.jpg")}]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "v.csv").write_text("category_path,business_value\nApparel,4.5\n")
    report = run(config(str(tmp_path / "c.jsonl"), str(tmp_path / "out"), fast_fetch,
                        business_value_uri=str(tmp_path / "v.csv")))
    products, rejects = read_outputs(tmp_path / "out")
    assert [(p["product_id"], p["business_value"]) for p in products] == [("1", 4.5)]
    assert [(r["product_id"], r["reason"]) for r in rejects] == [("2", "unknown_category")]
    assert report.images.sources == 1  # no image is fetched for a rejected product


def test_myntra_catalog_every_row_accounted(myntra_dir: Path, myntra_server: ServerHandle, tmp_path: Path) -> None:
    """All 5,249 rows of the real catalog, images over loopback HTTP."""
    report = run(IngestConfig(
        catalog=str(myntra_dir / "styles.csv"), out=str(tmp_path / "out"), column_map=MYNTRA_COLUMN_MAP,
        images_base=myntra_server.base_url + "/img/", progress=False, fetch=FetchConfig(policy=TRUSTED)))
    products, rejects = read_outputs(tmp_path / "out")
    assert report.input_records == 5249
    assert report.accepted + report.rejected == 5249 == len(products) + len(rejects)
    with open(myntra_dir / "styles.csv", newline="", encoding="utf-8") as fh:
        one_word = [row["id"] for row in csv.DictReader(fh) if row["productDisplayName"] == "Playboy"]
    assert [(r["product_id"], r["reason"]) for r in rejects] == [(one_word[0], "short_title")]
    shas = Counter(p["image_sha256"] for p in products)
    assert report.images.stored_new == len(shas) < len(products)  # exact duplicate images stored once
    assert all(len(p["category_path"]) == 3 for p in products)
