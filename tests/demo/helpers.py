"""Helpers of the demo tests (plain functions and constants; fixtures are in conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ecom_kfp.demo import DemoCatalogReport

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
