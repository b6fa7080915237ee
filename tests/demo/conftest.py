"""A small demo catalog generated once per test session, with its truth and parsed lines."""

from __future__ import annotations

import json

import pytest

from ecom_kfp.demo import DemoCatalogConfig, generate
from tests.demo.helpers import IMAGE_SIZE, PRODUCTS, Demo, parse_records


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    root = tmp_path_factory.mktemp("demo") / "catalog"
    report = generate(DemoCatalogConfig(out=str(root), products=PRODUCTS, seed=7, image_size=IMAGE_SIZE,
                                        fault_rate=0.01, duplicate_rate=0.01, progress=False))
    lines = (root / "catalog.jsonl").read_text(encoding="utf-8").splitlines()
    truth = json.loads((root / "truth.json").read_text())
    return Demo(root, report, truth, lines, parse_records(lines))
