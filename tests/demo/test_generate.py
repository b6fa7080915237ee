"""The demo catalog: deterministic, faithful to its truth.json, and its planted faults are real."""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from pathlib import Path

import imagehash
import pytest
from PIL import Image

from ecom_kfp import uri
from ecom_kfp.contracts.labels import SEPARATOR
from ecom_kfp.demo import DemoCatalogConfig, generate
from ecom_kfp.demo.drawing import draw_product
from ecom_kfp.demo.faults import encode_jpeg
from ecom_kfp.demo.generate import INGEST_REJECT_FAULTS, SINGLE_FAULTS
from ecom_kfp.demo.products import make_product
from ecom_kfp.demo.taxonomy import LEAVES, UNKNOWN_PATHS
from tests.demo.helpers import IMAGE_SIZE, PRODUCTS, Demo

#: Files whose bytes depend only on the config (report.json carries timings).
DETERMINISTIC = ("catalog.jsonl", "business_value.csv", "truth.json")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decodes(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except OSError:  # PIL.UnidentifiedImageError and truncation errors are OSErrors
        return False


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "report.json"}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    config = dict(products=80, seed=3, image_size=48, progress=False)
    generate(DemoCatalogConfig(out=str(tmp_path / "a"), **config))
    generate(DemoCatalogConfig(out=str(tmp_path / "b"), **config))
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(DETERMINISTIC) <= set(first)
    assert first == second
    generate(DemoCatalogConfig(out=str(tmp_path / "c"), **{**config, "seed": 4}))
    assert _files(tmp_path / "c")["catalog.jsonl"] != first["catalog.jsonl"]


def test_rerun_into_same_directory_removes_stale_images(tmp_path: Path) -> None:
    """A dead link of this run must stay dead even if an earlier run wrote that file."""
    out = tmp_path / "demo"
    generate(DemoCatalogConfig(out=str(out), products=80, seed=1, image_size=32, progress=False))
    stale = out / "images" / "stale.jpg"
    stale.write_bytes(b"old")
    report = generate(DemoCatalogConfig(out=str(out), products=80, seed=2, image_size=32, progress=False))
    truth = json.loads((out / "truth.json").read_text())
    assert not stale.exists()
    assert all(not (out / "images" / f"{pid}.jpg").exists() for pid in truth["dead_link"])
    assert report.images_written == len(list((out / "images").iterdir()))


def test_report_matches_files(demo: Demo) -> None:
    report = demo.report
    assert report.products == PRODUCTS == len(demo.lines)
    assert report.malformed_lines == len(demo.truth["malformed_lines"])
    images = list((demo.root / "images").iterdir())
    assert report.images_written == len(images)
    assert report.image_bytes == sum(p.stat().st_size for p in images)
    assert json.loads((demo.root / "report.json").read_text())["products"] == PRODUCTS
    assert report.planted["dead_link"] == len(demo.truth["dead_link"])


def test_lines_parse_except_the_planted_malformed_ones(demo: Demo) -> None:
    bad = []
    for number, line in enumerate(demo.lines, start=1):
        try:
            if not isinstance(json.loads(line), dict):
                bad.append(number)
        except json.JSONDecodeError:
            bad.append(number)
    assert bad == demo.truth["malformed_lines"]
    assert len(bad) >= 3
    assert len(demo.records) == PRODUCTS - len(bad)


def test_records_have_the_catalog_fields(demo: Demo) -> None:
    for record in demo.records.values():
        assert set(record) >= {"product_id", "title", "brand", "price", "category_path", "image_url"}
        assert re.fullmatch(r"P\d{6}", record["product_id"])
        assert isinstance(record["price"], float) and record["price"] > 0
        assert record["category_path"] is None or isinstance(record["category_path"], list)
        url = record["image_url"]
        assert url is None or (isinstance(url, str) and "://" not in url and not url.startswith("/"))
    assert len(demo.records) == len({r["product_id"] for r in demo.records.values()})


def test_titles_look_like_marketplace_titles(demo: Demo) -> None:
    faulty = set(demo.truth["empty_title"]) | set(demo.truth["short_title"])
    titles = [r["title"] for pid, r in demo.records.items() if pid not in faulty]
    assert all(len(t.split()) >= 4 for t in titles)
    shared = {pid for group in demo.truth["repeated_title_groups"] for pid in group[1:]}
    for record in demo.records.values():
        if record["product_id"] not in faulty | shared:
            # Title and image agree: the title names the brand and the colour that is drawn.
            assert record["title"].startswith(record["brand"])
            assert record["colour"] in record["title"]
    # Electronics carry model numbers like S24C550H.
    assert any(re.search(r"\b[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b", t) for t in titles)


def test_category_tree_depth_and_classes() -> None:
    depths = Counter(len(leaf.path) for leaf in LEAVES)
    assert set(depths) == {3, 4}
    assert 25 <= len(LEAVES) <= 40
    names = [leaf.name for leaf in LEAVES]
    assert len(set(names)) == len(names)
    # No leaf is an inner node of another (every leaf is a real leaf).
    assert not any(b.startswith(a + SEPARATOR) for a in names for b in names)
    assert len({leaf.path[0] for leaf in LEAVES}) >= 5
    assert not any(path in {leaf.path for leaf in LEAVES} for path in UNKNOWN_PATHS)


def test_class_counts_match_truth_and_are_uneven(demo: Demo) -> None:
    leaf_names = {leaf.path: leaf.name for leaf in LEAVES}
    counts = Counter(leaf_names[tuple(r["category_path"])] for r in demo.records.values()
                     if r["category_path"] and tuple(r["category_path"]) in leaf_names)
    assert dict(counts) == demo.truth["class_counts"]
    assert demo.truth["leaf_classes"] == sorted(leaf_names.values())
    assert demo.truth["tree_depth"] == 4
    assert len(counts) >= 25, "a few hundred products should already cover most classes"
    assert max(counts.values()) >= 4 * min(counts.values())


def test_business_value_table(demo: Demo) -> None:
    lines = (demo.root / "business_value.csv").read_text().splitlines()
    assert lines[0] == "category_path,business_value"
    table = {path: float(value) for path, value in (line.rsplit(",", 1) for line in lines[1:])}
    assert set(table) == {leaf.name for leaf in LEAVES}
    assert all(value > 0 for value in table.values())
    assert len(set(table.values())) > 10


def test_planted_products_are_disjoint_and_counted(demo: Demo) -> None:
    truth = demo.truth
    single = [pid for kind in SINGLE_FAULTS for pid in truth[kind]]
    copies = [pid for key in ("exact_duplicate_groups", "near_duplicate_groups", "repeated_title_groups")
              for group in truth[key] for pid in group]
    malformed = {f"P{n:06d}" for n in truth["malformed_lines"]}
    everything = single + copies + sorted(malformed) + sorted(truth["wrong_label"])
    assert len(everything) == len(set(everything)), "each product carries at most one planted defect"
    expected = round(0.01 * PRODUCTS)
    assert all(len(truth[kind]) == expected for kind in (*SINGLE_FAULTS, "wrong_label"))
    assert demo.report.planted["wrong_label"] == expected
    assert all(len(truth[key]) == expected and all(2 <= len(g) <= 3 for g in truth[key])
               for key in ("exact_duplicate_groups", "near_duplicate_groups", "repeated_title_groups"))
    assert truth["expected_ingest_rejects"] == {pid: kind for kind in INGEST_REJECT_FAULTS for pid in truth[kind]}


def test_exact_duplicates_share_bytes_and_nothing_else_does(demo: Demo) -> None:
    by_sha: dict[str, set[str]] = {}
    for pid in demo.records:
        if pid in demo.truth["expected_ingest_rejects"]:
            continue
        by_sha.setdefault(_sha(demo.image(pid)), set()).add(pid)
    found = sorted(sorted(group) for group in by_sha.values() if len(group) > 1)
    assert found == sorted(sorted(group) for group in demo.truth["exact_duplicate_groups"])
    for group in demo.truth["exact_duplicate_groups"]:
        paths = {demo.records[pid]["category_path"] == demo.records[group[0]]["category_path"] for pid in group}
        assert paths == {True}
        assert len({demo.records[pid]["image_url"] for pid in group}) == len(group), "one file per product"


def test_near_duplicates_differ_in_bytes_but_not_in_perceptual_hash(demo: Demo) -> None:
    kinds = demo.truth["near_duplicate_kinds"]
    assert set(kinds.values()) == {"requantized", "resized", "shifted"}
    for group in demo.truth["near_duplicate_groups"]:
        original = demo.image(group[0])
        base = imagehash.phash(Image.open(original))
        for pid in group[1:]:
            copy = demo.image(pid)
            assert _sha(copy) != _sha(original)
            assert imagehash.phash(Image.open(copy)) - base <= 6, (pid, kinds[pid])
            with Image.open(copy) as image:
                assert (image.width < IMAGE_SIZE) == (kinds[pid] == "resized")


def test_repeated_titles_have_distinct_images(demo: Demo) -> None:
    for group in demo.truth["repeated_title_groups"]:
        assert len({demo.records[pid]["title"] for pid in group}) == 1
        assert len({_sha(demo.image(pid)) for pid in group}) == len(group)


def test_clean_images_decode_at_the_configured_size(demo: Demo) -> None:
    planted = set(demo.truth["expected_ingest_rejects"]) | set(demo.truth["near_duplicate_kinds"])
    malformed = {f"P{n:06d}" for n in demo.truth["malformed_lines"]}
    clean = [pid for pid in demo.records if pid not in planted | malformed]
    assert len(clean) > 0.8 * PRODUCTS
    for pid in clean:
        with Image.open(demo.image(pid)) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (IMAGE_SIZE, IMAGE_SIZE)


def test_broken_images_fail_to_decode(demo: Demo) -> None:
    truth = demo.truth
    for pid in truth["truncated_image"] + truth["random_bytes_image"] + truth["html_image"]:
        assert not _decodes(demo.image(pid)), pid
    for pid in truth["truncated_image"]:
        assert demo.image(pid).read_bytes()[:2] == b"\xff\xd8", "starts as a JPEG"
    for pid in truth["html_image"]:
        assert demo.image(pid).read_bytes().startswith(b"<!DOCTYPE html>")
        assert demo.image(pid).suffix == ".jpg"
    for pid in truth["tiny_image"]:
        with Image.open(demo.image(pid)) as image:
            assert image.size == (16, 16)


def test_missing_images(demo: Demo) -> None:
    for pid in demo.truth["dead_link"]:
        assert demo.records[pid]["image_url"]
        assert not demo.image(pid).exists()
    assert {demo.records[pid]["image_url"] for pid in demo.truth["no_image"]} <= {None, ""}


def test_bad_titles_and_categories(demo: Demo) -> None:
    truth, records = demo.truth, demo.records
    strip = str.maketrans(string.punctuation, " " * len(string.punctuation))
    assert all(not records[pid]["title"].translate(strip).split() for pid in truth["empty_title"])
    assert {records[pid]["title"] for pid in truth["empty_title"]} & {""}
    assert all(len(records[pid]["title"].split()) == 2 for pid in truth["short_title"])
    assert all(tuple(records[pid]["category_path"]) in UNKNOWN_PATHS for pid in truth["unknown_category"])
    assert all(not records[pid]["category_path"] for pid in truth["empty_category"])


def test_wrong_labels_contradict_title_and_image_at_every_level(demo: Demo) -> None:
    for pid, planted in demo.truth["wrong_label"].items():
        clean = make_product(7, int(pid[1:]) - 1)
        record = demo.records[pid]
        assert planted["true_category"] == list(clean.leaf.path)
        assert record["category_path"] == planted["given_category"] != planted["true_category"]
        assert planted["given_category"][0] != planted["true_category"][0]
        assert tuple(planted["given_category"]) in {leaf.path for leaf in LEAVES}
        assert record["title"] == clean.title
        assert _sha(demo.image(pid)) == hashlib.sha256(encode_jpeg(draw_product(
            clean.leaf.shape, clean.style, IMAGE_SIZE))).hexdigest()


def test_wrong_labels_change_only_their_own_category(tmp_path: Path) -> None:
    config = dict(products=120, seed=3, image_size=32, progress=False)
    with_errors = generate(DemoCatalogConfig(out=str(tmp_path / "a"), label_error_rate=0.05, **config))
    without = generate(DemoCatalogConfig(out=str(tmp_path / "b"), label_error_rate=0.0, **config))
    assert (with_errors.planted["wrong_label"], without.planted["wrong_label"]) == (6, 0)
    planted = json.loads((tmp_path / "a" / "truth.json").read_text())["wrong_label"]
    lines = [(tmp_path / d / "catalog.jsonl").read_text().splitlines() for d in ("a", "b")]
    changed = {json.loads(a)["product_id"]: (json.loads(a), json.loads(b)) for a, b in zip(*lines) if a != b}
    assert set(changed) == set(planted)
    for pid, (wrong, right) in changed.items():
        assert right["category_path"] == planted[pid]["true_category"]
        assert {**wrong, "category_path": right["category_path"]} == right
    assert _files(tmp_path / "a" / "images") == _files(tmp_path / "b" / "images")


@pytest.mark.parametrize(("field", "value", "flag"), [
    ("products", 10, "--products"), ("image_size", 8, "--image-size"),
    ("fault_rate", 0.5, "--fault-rate"), ("duplicate_rate", 0.0, "--duplicate-rate"), ("out", "", "--out"),
    ("label_error_rate", 0.5, "--label-error-rate"), ("label_error_rate", -0.01, "--label-error-rate"),
])
def test_bad_config_fails_fast_naming_the_flag(tmp_path: Path, field: str, value, flag: str) -> None:
    config = {"out": str(tmp_path / "x"), field: value}
    with pytest.raises(ValueError, match=re.escape(f"{flag}={value!r}")):
        generate(DemoCatalogConfig(**config))
    assert not (tmp_path / "x").exists()


def test_rates_that_plant_more_products_than_the_catalog_has_fail_fast(tmp_path: Path) -> None:
    config = DemoCatalogConfig(out=str(tmp_path / "x"), products=60, fault_rate=0.05, duplicate_rate=0.05,
                               label_error_rate=0.1)
    with pytest.raises(ValueError, match=re.escape("--products=60: too few for the")):
        generate(config)


def test_writes_to_gcs_the_same_bytes_as_locally(gcs_bucket: str, tmp_path: Path) -> None:
    config = dict(products=60, seed=5, image_size=32, progress=False)
    report = generate(DemoCatalogConfig(out=f"{gcs_bucket}/demo", **config))
    generate(DemoCatalogConfig(out=str(tmp_path / "local"), **config))
    local = _files(tmp_path / "local")
    remote = {rel: uri.read_bytes(uri.join(report.out, rel)) for rel in uri.relative_files(report.out)
              if rel != "report.json"}
    assert remote == local
    assert report.catalog == f"{gcs_bucket}/demo/catalog.jsonl"
    assert uri.read_json(uri.join(report.out, "report.json"))["products"] == 60
