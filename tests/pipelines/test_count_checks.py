"""run-local's count checks: every product and every trained model accounted for, from the stages'
own reports (the e2e run in test_local_runs checks that a real run passes them)."""

from __future__ import annotations

import copy

import pytest

from ecom_kfp.pipelines.local_run import count_checks

SPLITS = {"train": 70, "val": 15, "test": 15}
REPORTS = {
    "demo_catalog": {"products": 120},
    "ingest": {"input_records": 120, "accepted": 110, "rejected": 10},
    "dedupe": {"input": 110, "kept": 102, "duplicates": 6, "rejected": 2},
    "dataset": {"input_products": 102, "records": 100, "rejected": 2, "splits": SPLITS},
    "train": [{"counts": SPLITS}, {"counts": SPLITS}],
    "ensemble": {"members": ["m0", "m1"]},
    "evaluate": {"examples": 15},
}


def _failed(reports: dict) -> list[str]:
    return [c.what for c in count_checks(reports) if not c.ok]


def test_a_consistent_run_passes_every_check() -> None:
    assert _failed(REPORTS) == []


@pytest.mark.parametrize(("path", "value", "failed"), [
    (("ingest", "rejected"), 9, "ingest input = accepted + rejected"),
    (("dedupe", "duplicates"), 5, "dedupe input = kept + duplicates + rejected"),
    (("evaluate", "examples"), 14, "test records = examples evaluated"),
    (("ensemble", "members"), ["m0"], "models trained = models averaged"),
])
def test_a_product_or_model_lost_between_stages_fails_its_check(path: tuple[str, str], value: object,
                                                                 failed: str) -> None:
    reports = copy.deepcopy(REPORTS)
    reports[path[0]][path[1]] = value
    assert _failed(reports) == [failed]


def test_each_member_must_have_read_every_record() -> None:
    reports = copy.deepcopy(REPORTS)
    reports["train"][1]["counts"] = {**SPLITS, "val": 14}
    assert _failed(reports) == ["val records = records train read (member 2)"]
