"""A small demo catalog generated once per test session, with its truth and parsed lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecom_kfp.demo import DemoCatalogConfig, DemoCatalogReport, generate

#: Small enough for CI, big enough that every fault kind is planted several times.
PRODUCTS = 400
IMAGE_SIZE = 64


@dataclass(frozen=True)
class Demo:
    """A generated catalog: where it is, what it planted and what its lines parse to."""

    root: Path
    report: DemoCatalogReport
    truth: dict
    lines: list[str]
    records: dict[str, dict]

    def image(self, product_id: str) -> Path:
        return self.root / "images" / self.records[product_id]["image_url"]


def parse_records(lines: list[str]) -> dict[str, dict]:
    """Product id -> record for the lines that are JSON objects."""
    records = {}
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records[record["product_id"]] = record
    return records


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    root = tmp_path_factory.mktemp("demo") / "catalog"
    report = generate(DemoCatalogConfig(out=str(root), products=PRODUCTS, seed=7, image_size=IMAGE_SIZE,
                                        fault_rate=0.01, duplicate_rate=0.01, progress=False))
    lines = (root / "catalog.jsonl").read_text(encoding="utf-8").splitlines()
    truth = json.loads((root / "truth.json").read_text())
    return Demo(root, report, truth, lines, parse_records(lines))
