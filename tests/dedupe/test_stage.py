"""The dedupe stage end to end on small ingest layouts of real JPEG files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from .conftest import dedupe, jpeg, phash64, picture

from ecom_kfp import uri
from ecom_kfp.cli import main as cli_main
from ecom_kfp.dedupe import DedupeConfig, run
from ecom_kfp.dedupe.image_hashes import decode_rgb
from ecom_kfp.dedupe.phash import hamming


def by_id(rows: list[dict]) -> dict:
    return {r["product_id"]: r for r in rows}


def image_phash(data: bytes) -> int:
    rgb, _, _ = decode_rgb(data)
    return int(phash64([rgb])[0])


def test_identical_bytes_are_grouped_by_sha256(make_layout, tmp_path):
    same = jpeg(picture(1))
    src = make_layout([{"product_id": "b", "title": "one", "image": same},
                       {"product_id": "a", "title": "two", "image": same},
                       {"product_id": "c", "title": "three", "image": jpeg(picture(2))}])
    kept, dups, rejects, report = dedupe(src, tmp_path / "out")
    assert set(kept) == {"a", "c"} and kept["a"]["group_size"] == 2 and kept["a"]["group_id"] == "a"
    assert dups == [{"product_id": "b", "group_id": "a", "rule": "sha256", "distance": 0.0,
                     "kept_product_id": "a"}]
    assert report["rules"]["sha256"]["dropped"] == 1 and not rejects


def test_reencode_matches_grid_only_when_grid_rule_on(make_layout, tmp_path):
    image = picture(7)
    a, b = jpeg(image, quality=95), jpeg(image, quality=94)
    src = make_layout([{"product_id": "a", "title": "x", "image": a}, {"product_id": "b", "title": "y", "image": b}])
    _, dups, _, _ = dedupe(src, tmp_path / "on", phash_rule=False)
    assert [(d["product_id"], d["rule"]) for d in dups] == [("b", "grid")]
    _, dups, _, _ = dedupe(src, tmp_path / "off", phash_rule=False, grid_rule=False)
    assert dups == []


def test_resized_copy_matches_by_phash_and_threshold_is_inclusive(make_layout, tmp_path):
    image = picture(11)
    big, small = jpeg(image), jpeg(image.resize((72, 96)), quality=20)
    distance = int(hamming(np.uint64(image_phash(big)), np.uint64(image_phash(small))))
    assert 0 < distance <= 6, "the variant must be near but not identical for this test to mean anything"
    src = make_layout([{"product_id": "small", "title": "x", "image": small},
                       {"product_id": "big", "title": "y", "image": big},
                       {"product_id": "other", "title": "z", "image": jpeg(picture(12))}])
    unverified = {"near_verify_bits": 256, "near_colour_tolerance": 255}  # the 64-bit threshold alone
    kept, dups, _, _ = dedupe(src, tmp_path / "at", near_threshold=distance, **unverified)
    # Kept: the larger picture, although its id sorts later.
    assert set(kept) == {"big", "other"}
    assert dups == [{"product_id": "small", "group_id": "big", "rule": "phash", "distance": float(distance),
                     "kept_product_id": "big"}]
    _, dups, _, _ = dedupe(src, tmp_path / "below", near_threshold=distance - 1, **unverified)
    assert dups == []


def test_near_candidates_must_pass_the_256_bit_and_colour_checks(make_layout, tmp_path):
    image = picture(11)
    src = make_layout([{"product_id": "big", "title": "y", "image": jpeg(image)},
                       {"product_id": "small", "title": "x", "image": jpeg(image.resize((72, 96)), quality=20)}])
    assert len(dedupe(src, tmp_path / "loose", near_verify_bits=256, near_colour_tolerance=255)[1]) == 1
    assert dedupe(src, tmp_path / "strict-bits", near_verify_bits=0, near_colour_tolerance=255)[1] == []
    assert dedupe(src, tmp_path / "strict-colour", near_verify_bits=256, near_colour_tolerance=0)[1] == []


def test_identical_normalised_titles_group_unless_disabled(make_layout, tmp_path):
    src = make_layout([{"product_id": "a", "title": "Red  Shirt", "image": jpeg(picture(1))},
                       {"product_id": "b", "title": "red shirt", "image": jpeg(picture(2))},
                       {"product_id": "c", "title": "", "image": jpeg(picture(3))},
                       {"product_id": "d", "title": "", "image": jpeg(picture(4))}])
    _, dups, _, _ = dedupe(src, tmp_path / "on")
    assert [(d["product_id"], d["rule"], d["kept_product_id"]) for d in dups] == [("b", "title", "a")]
    _, dups, _, _ = dedupe(src, tmp_path / "off", title_rule=False)
    assert dups == []


def test_groups_are_transitive_across_rules(make_layout, tmp_path):
    same = jpeg(picture(1))
    src = make_layout([{"product_id": "a", "title": "first", "image": same},
                       {"product_id": "b", "title": "second", "image": same},
                       {"product_id": "c", "title": "second", "image": jpeg(picture(2))},
                       {"product_id": "d", "title": "unrelated", "image": jpeg(picture(3))}])
    kept, dups, _, report = dedupe(src, tmp_path / "out")
    assert kept["a"]["group_size"] == 3 and kept["d"]["group_size"] == 1
    rules = {d["product_id"]: (d["rule"], d["distance"]) for d in dups}
    assert rules == {"b": ("sha256", 0.0), "c": ("transitive", None)}
    assert report["dropped_transitive"] == 1


def test_output_is_independent_of_input_order(make_layout, tmp_path):
    base = picture(5)
    products = [{"product_id": f"p{i}", "title": f"t{i % 4}", "image": jpeg(base if i % 3 == 0 else picture(i),
                                                                              quality=90 - i)}
                for i in range(12)]
    first = dedupe(make_layout(products), tmp_path / "one")
    random.Random(0).shuffle(products)
    second = dedupe(make_layout(products), tmp_path / "two")
    assert first[0] == second[0]
    assert sorted(map(str, first[1])) == sorted(map(str, second[1]))


def test_unreadable_images_become_rejects_with_reasons(make_layout, tmp_path):
    good = jpeg(picture(1))
    src = make_layout([
        {"product_id": "ok", "title": "fine", "image": good},
        {"product_id": "html", "title": "a", "image": b"<html><body>404 not found</body></html>"},
        {"product_id": "truncated", "title": "b", "image": jpeg(picture(2))[:400]},
        {"product_id": "noise", "title": "c", "image": b"\xff\xd8\xff" + bytes(range(256)) * 4},
        {"product_id": "lying", "title": "d", "image": jpeg(picture(3)), "image_sha256": "0" * 64},
        {"product_id": "gone", "title": "e", "image": None, "image_uri": "images/aa/missing.jpg"},
        {"product_id": "none", "title": "f", "image": None},
    ])
    kept, dups, rejects, report = dedupe(src, tmp_path / "out")
    assert set(kept) == {"ok"} and not dups
    reasons = {r["product_id"]: r["reason"] for r in rejects}
    assert reasons == {"html": "image_unreadable", "truncated": "image_unreadable",
                       "noise": "image_unreadable", "lying": "image_sha256_mismatch",
                       "gone": "image_missing", "none": "image_missing"}
    assert all(r["stage"] == "dedupe" and r["detail"] for r in rejects)
    assert report["rejects_by_reason"] == {"image_missing": 2, "image_sha256_mismatch": 1, "image_unreadable": 3}


def test_empty_input_writes_empty_outputs(make_layout, tmp_path):
    kept, dups, rejects, report = dedupe(make_layout([]), tmp_path / "out")
    assert (kept, dups, rejects) == ({}, [], [])
    assert report["input"] == 0 and "empty input" in report["message"]
    assert "No duplicate groups" in (tmp_path / "out" / "samples.html").read_text()


def test_bad_config_and_missing_input_fail_fast_naming_the_flag(make_layout, tmp_path):
    src = make_layout([])
    with pytest.raises(ValueError, match="--near-threshold=40"):
        run(DedupeConfig(str(src), str(tmp_path / "out"), near_threshold=40))
    with pytest.raises(ValueError, match="--out"):
        run(DedupeConfig(str(src), str(src)))
    with pytest.raises(FileNotFoundError, match="--products"):
        run(DedupeConfig(str(tmp_path / "nowhere"), str(tmp_path / "out")))


def test_samples_page_shows_groups_with_inline_thumbnails(make_layout, tmp_path):
    same = jpeg(picture(1))
    src = make_layout([{"product_id": "a", "title": "Tom & <Jerry>", "image": same},
                       {"product_id": "b", "title": "x", "image": same}])
    dedupe(src, tmp_path / "out")
    page = (tmp_path / "out" / "samples.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 2 and "Tom &amp; &lt;Jerry&gt;" in page


def test_cli_runs_with_summary_and_help(make_layout, tmp_path, capsys):
    same = jpeg(picture(1))
    src = make_layout([{"product_id": "a", "title": "x", "image": same}, {"product_id": "b", "title": "y", "image": same}])
    assert cli_main(["dedupe", "--products", str(src), "--out", str(tmp_path / "out"), "--workers", "1",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 kept, 1 duplicates in 1 groups" in out and (tmp_path / "out" / "report.json").exists()
    assert cli_main(["dedupe", "--products", str(src), "--out", str(tmp_path / "o2"), "--near-threshold", "99"]) == 2
    with pytest.raises(SystemExit):
        cli_main(["dedupe", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--products", "--out", "--near-threshold", "--near-verify-bits", "--near-colour-tolerance",
                 "--embedding-model", "--embedding-threshold", "--embedding-batch-size", "--no-title-rule",
                 "--no-sha256-rule", "--no-grid-rule", "--no-phash-rule", "--grid-cells", "--workers",
                 "--chunk-size", "--sample-groups", "--no-progress"):
        assert flag in help_text


def test_parallel_hashing_matches_in_process(make_layout, tmp_path):
    products = [{"product_id": f"p{i}", "title": f"t{i}", "image": jpeg(picture(i % 7))} for i in range(20)]
    src = make_layout(products)
    serial = dedupe(src, tmp_path / "serial")
    run(DedupeConfig(str(src), str(tmp_path / "parallel"), workers=2, chunk_size=6, progress=False))
    assert pq.read_table(tmp_path / "parallel" / "duplicates.parquet").to_pylist() == serial[1]


def test_reads_and_writes_gcs(make_layout, tmp_path, gcs_bucket):
    same = jpeg(picture(1))
    src = make_layout([{"product_id": "a", "title": "x", "image": same}, {"product_id": "b", "title": "y", "image": same},
                       {"product_id": "c", "title": "z", "image": jpeg(picture(2))}])
    uri.copy_tree(str(src), f"{gcs_bucket}/ingest")
    report = run(DedupeConfig(f"{gcs_bucket}/ingest", f"{gcs_bucket}/dedupe", workers=1, progress=False))
    assert (report.kept, report.duplicates, report.rejected) == (2, 1, 0)
    dups = uri.read_parquet(f"{gcs_bucket}/dedupe/duplicates.parquet").to_pylist()
    assert [(d["product_id"], d["kept_product_id"]) for d in dups] == [("b", "a")]
    assert uri.read_json(f"{gcs_bucket}/dedupe/report.json")["kept"] == 2
