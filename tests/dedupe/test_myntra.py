"""Real data: myntra-dev has 48 groups (99 images) of byte-identical product images."""

from __future__ import annotations

import collections
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ecom_kfp.dedupe import DedupeConfig, run


def exact_groups(layout: Path) -> list[set[str]]:
    """Ground truth: products sharing image bytes."""
    by_sha = collections.defaultdict(set)
    for row in pq.read_table(layout / "products.parquet", columns=["product_id", "image_sha256"]).to_pylist():
        by_sha[row["image_sha256"]].add(row["product_id"])
    return [ids for ids in by_sha.values() if len(ids) > 1]


def output_groups(out: Path) -> dict[str, str]:
    """product_id -> group_id for every kept or dropped product."""
    group_of = {r["product_id"]: r["group_id"] for r in pq.read_table(out / "products.parquet").to_pylist()}
    group_of.update({r["product_id"]: r["group_id"] for r in pq.read_table(out / "duplicates.parquet").to_pylist()})
    return group_of


@pytest.fixture(scope="module")
def truth(myntra_layout: Path) -> list[set[str]]:
    groups = exact_groups(myntra_layout)
    assert (len(groups), sum(map(len, groups))) == (48, 99)
    return groups


def test_exact_rule_finds_every_group_and_nothing_else(myntra_layout, truth, tmp_path):
    out = tmp_path / "out"
    report = run(DedupeConfig(str(myntra_layout), str(out), title_rule=False, grid_rule=False,
                              phash_rule=False, progress=False))
    group_of = output_groups(out)
    found = collections.defaultdict(set)
    for product, group in group_of.items():
        found[group].add(product)
    assert sorted(map(sorted, (g for g in found.values() if len(g) > 1))) == sorted(map(sorted, truth))
    assert (report.input, report.duplicate_groups, report.duplicates, report.rejected) == (5249, 48, 51, 0)


def test_all_image_rules_keep_every_exact_group_together(myntra_layout, truth, tmp_path):
    out = tmp_path / "out"
    report = run(DedupeConfig(str(myntra_layout), str(out), title_rule=False, progress=False))
    group_of = output_groups(out)
    assert all(len({group_of[p] for p in members}) == 1 for members in truth)
    assert report.kept + report.duplicates + report.rejected == 5249
