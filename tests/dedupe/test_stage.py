"""The dedupe stage end to end on small ingest layouts of real JPEG files."""

from __future__ import annotations

import json
import random

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


def split_groups(kept: dict) -> dict[str, str]:
    return {pid: row["split_group"] for pid, row in kept.items()}


def test_equal_grid_key_never_removes_but_joins_the_leak_group(make_layout, tmp_path):
    image = picture(7)
    a, b = jpeg(image, quality=95), jpeg(image, quality=94)
    src = make_layout([{"product_id": "a", "title": "x", "image": a}, {"product_id": "b", "title": "y", "image": b},
                       {"product_id": "c", "title": "z", "image": jpeg(picture(8))}])
    kept, dups, _, report = dedupe(src, tmp_path / "on", phash_rule=False)
    assert dups == [] and split_groups(kept) == {"a": "a", "b": "a", "c": "c"}
    assert report["rules"]["grid"]["matched_products"] == 2 and report["split_groups"] == 1
    kept, _, _, _ = dedupe(src, tmp_path / "off", phash_rule=False, grid_rule=False)
    assert split_groups(kept) == {"a": "a", "b": "b", "c": "c"}


def test_resized_copy_is_removed_by_phash_only_with_near_removes(make_layout, tmp_path):
    image = picture(11)
    big, small = jpeg(image), jpeg(image.resize((72, 96)), quality=20)
    distance = int(hamming(np.uint64(image_phash(big)), np.uint64(image_phash(small))))
    assert 0 < distance <= 6, "the variant must be near but not identical for this test to mean anything"
    src = make_layout([{"product_id": "small", "title": "x", "image": small},
                       {"product_id": "big", "title": "y", "image": big},
                       {"product_id": "other", "title": "z", "image": jpeg(picture(12))}])
    unverified = {"near_verify_bits": 256, "near_colour_tolerance": 255}  # the 64-bit threshold alone
    kept, dups, _, _ = dedupe(src, tmp_path / "default", near_threshold=distance, **unverified)
    assert dups == [] and split_groups(kept) == {"small": "big", "big": "big", "other": "other"}
    kept, dups, _, _ = dedupe(src, tmp_path / "at", near_threshold=distance, near_removes=True, **unverified)
    # Kept: the larger picture, although its id sorts later.
    assert set(kept) == {"big", "other"}
    assert dups == [{"product_id": "small", "group_id": "big", "rule": "phash", "distance": float(distance),
                     "kept_product_id": "big"}]
    kept, dups, _, _ = dedupe(src, tmp_path / "below", near_threshold=distance - 1, near_removes=True, **unverified)
    assert dups == [] and split_groups(kept)["small"] == "small"


def test_near_removals_must_pass_the_256_bit_and_colour_checks(make_layout, tmp_path):
    image = picture(11)
    src = make_layout([{"product_id": "big", "title": "y", "image": jpeg(image)},
                       {"product_id": "small", "title": "x", "image": jpeg(image.resize((72, 96)), quality=20)}])
    near = {"near_removes": True}
    assert len(dedupe(src, tmp_path / "loose", near_verify_bits=256, near_colour_tolerance=255, **near)[1]) == 1
    assert dedupe(src, tmp_path / "strict-bits", near_verify_bits=0, near_colour_tolerance=255, **near)[1] == []
    assert dedupe(src, tmp_path / "strict-colour", near_verify_bits=256, near_colour_tolerance=0, **near)[1] == []


def test_same_title_and_near_picture_removes_within_the_title_thresholds(make_layout, tmp_path):
    image = picture(11)
    big, small = jpeg(image), jpeg(image.resize((72, 96)), quality=20)
    distance = int(hamming(np.uint64(image_phash(big)), np.uint64(image_phash(small))))
    src = make_layout([{"product_id": "big", "title": "Blue Shirt", "image": big},
                       {"product_id": "small", "title": "blue  shirt", "image": small}])
    unverified = {"near_verify_bits": 256, "title_colour_tolerance": 255}  # the 64-bit threshold alone
    _, dups, _, _ = dedupe(src, tmp_path / "at", title_near_threshold=distance, **unverified)
    assert [(d["product_id"], d["rule"], d["distance"]) for d in dups] == [("small", "phash_title", float(distance))]
    kept, dups, _, _ = dedupe(src, tmp_path / "below", title_near_threshold=distance - 1, **unverified)
    assert dups == [] and split_groups(kept) == {"big": "big", "small": "big"}
    assert dedupe(src, tmp_path / "colour", **{**unverified, "title_colour_tolerance": 0})[1] == []
    assert dedupe(src, tmp_path / "bits", **{**unverified, "near_verify_bits": 0})[1] == []


def test_identical_titles_with_different_pictures_share_a_leak_group_but_are_not_removed(make_layout, tmp_path):
    src = make_layout([{"product_id": "a", "title": "Red  Shirt", "image": jpeg(picture(1))},
                       {"product_id": "b", "title": "red shirt", "image": jpeg(picture(2))},
                       {"product_id": "c", "title": "", "image": jpeg(picture(3))},
                       {"product_id": "d", "title": "", "image": jpeg(picture(4))}])
    kept, dups, _, report = dedupe(src, tmp_path / "on")
    assert dups == [] and split_groups(kept) == {"a": "a", "b": "a", "c": "c", "d": "d"}
    assert report["rules"]["title"]["matched_products"] == 2 and report["rules"]["title"]["dropped"] == 0
    kept, _, _, _ = dedupe(src, tmp_path / "off", title_rule=False)
    assert split_groups(kept) == {"a": "a", "b": "b", "c": "c", "d": "d"}


def test_identical_pictures_of_different_categories_are_conflicts_not_removals(make_layout, tmp_path):
    same, other = jpeg(picture(1)), jpeg(picture(2))
    src = make_layout([{"product_id": "a", "title": "Blue Top", "image": same, "category_path": ["Apparel", "Tops"]},
                       {"product_id": "b", "title": "Blue Tee", "image": same,
                        "category_path": ["Apparel", "Tshirts"]},
                       {"product_id": "c", "title": "Red Shirt", "image": other,
                        "source": json.dumps({"baseColour": "Red"})},
                       {"product_id": "d", "title": "Peach Shirt", "image": other,
                        "source": json.dumps({"baseColour": "Peach"})}])
    kept, dups, _, report = dedupe(src, tmp_path / "out")
    assert dups == [] and set(kept) == {"a", "b", "c", "d"}
    assert {pid: row["label_conflict"] for pid, row in kept.items()} == {"a": True, "b": True, "c": False, "d": False}
    assert split_groups(kept) == {"a": "a", "b": "a", "c": "c", "d": "c"}
    conflicts = {tuple(sorted(c["product_ids"])): (c["differs"], c["label_conflict"]) for c in report["conflicts"]}
    assert conflicts == {("a", "b"): (["category_path"], True), ("c", "d"): (["base_colour"], False)}
    assert report["label_conflicts"] == 2 and report["rules"]["sha256"]["vetoed_pairs"] == 2
    page = (tmp_path / "out" / "samples.html").read_text()
    assert "Label conflicts: 2" in page and "differs: category_path" in page
    # Without variant columns the two shirts are one product; the category still tells a and b apart.
    _, dups, _, _ = dedupe(src, tmp_path / "no-variants", variant_columns=[])
    assert [(d["product_id"], d["kept_product_id"]) for d in dups] == [("d", "c")]


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
    assert "No product was removed" in (tmp_path / "out" / "samples.html").read_text()


def test_bad_config_and_missing_input_fail_fast_naming_the_flag(make_layout, tmp_path):
    src = make_layout([])
    with pytest.raises(ValueError, match="--near-threshold=40"):
        run(DedupeConfig(str(src), str(tmp_path / "out"), near_threshold=40))
    with pytest.raises(ValueError, match="--out"):
        run(DedupeConfig(str(src), str(src)))
    with pytest.raises(FileNotFoundError, match="--products"):
        run(DedupeConfig(str(tmp_path / "nowhere"), str(tmp_path / "out")))


def test_samples_page_shows_random_removals_side_by_side(make_layout, tmp_path):
    products = [{"product_id": f"p{i}", "title": "Tom & <Jerry>" if i == 0 else f"t{i}",
                 "image": jpeg(picture(i // 2))} for i in range(12)]
    dedupe(make_layout(products), tmp_path / "out", sample_removals=4)
    page = (tmp_path / "out" / "samples.html").read_text()
    assert "4 chosen at random of 6" in page and page.count("data:image/jpeg;base64,") == 8
    assert page.count("removed: sha256 d=0") == 4 and "No conflicts." in page
    dedupe(make_layout(products), tmp_path / "all", sample_removals=50)
    page = (tmp_path / "all" / "samples.html").read_text()
    assert "6 chosen at random of 6" in page and "Tom &amp; &lt;Jerry&gt;" in page


def test_cli_runs_with_summary_and_help(make_layout, tmp_path, capsys):
    same = jpeg(picture(1))
    src = make_layout([{"product_id": "a", "title": "x", "image": same}, {"product_id": "b", "title": "y", "image": same}])
    assert cli_main(["dedupe", "--products", str(src), "--out", str(tmp_path / "out"), "--workers", "1",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 kept, 1 duplicates in 1 groups" in out and "removal and leak groups" in out
    assert (tmp_path / "out" / "report.json").exists()
    assert cli_main(["dedupe", "--products", str(src), "--out", str(tmp_path / "o2"), "--near-threshold", "99"]) == 2
    with pytest.raises(SystemExit):
        cli_main(["dedupe", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--products", "--out", "--near-threshold", "--near-verify-bits", "--near-colour-tolerance",
                 "--embedding-model", "--embedding-threshold", "--embedding-batch-size", "--no-title-rule",
                 "--no-sha256-rule", "--no-grid-rule", "--no-phash-rule", "--grid-cells", "--workers",
                 "--chunk-size", "--sample-removals", "--sample-seed", "--no-progress", "--no-phash-title-rule",
                 "--near-removes", "--title-near-threshold", "--title-colour-tolerance", "--variant-columns"):
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
