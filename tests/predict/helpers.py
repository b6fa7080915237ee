"""Helpers of the predict tests (plain functions and constants; fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.labels import class_name
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.contracts.serving import LevelThreshold, Thresholds
from ecom_kfp.testing import tiny_classifier as tiny

#: Every WRONG_LABEL_EVERY-th product gets the category of another level-1 branch.
WRONG_LABEL_EVERY = 10


@dataclass(frozen=True)
class Catalog:
    """An ingest output and what was planted in it."""

    layout: IngestLayout
    product_ids: list[str]
    wrong_labels: set[str]
    unscorable: dict[str, str]
    noisy_titles: set[str]

    @property
    def root(self) -> str:
        return self.layout.root


def write_catalog(root: str, records: list[tiny.Record], faults: bool = True,
                  sources: dict[str, dict] | None = None) -> Catalog:
    """Write ``records`` as an ingest output; with ``faults``, plant wrong labels and unscorable images;
    ``sources`` maps product ids to their catalog rows (``source``)."""
    layout = IngestLayout(root)
    rows, wrong, unscorable, noisy = [], set(), {}, set()
    paths = {c.path[0]: c.path for c in tiny.CATEGORIES}
    for i, record in enumerate(records):
        category = tiny.CATEGORIES[int(record.product_id.split("-c")[1].split("-")[0])]
        path = list(category.path)
        if category.keyword not in record.title.split():
            noisy.add(record.product_id)
        image = record.image_jpeg
        if faults and i % WRONG_LABEL_EVERY == 3:
            path = list(paths["Footwear" if path[0] == "Apparel" else "Apparel"])
            wrong.add(record.product_id)
        sha = hashlib.sha256(image).hexdigest()
        image_uri = layout.image(sha)
        if faults and i == 1:
            image_uri, unscorable[record.product_id] = None, "no_image"
        elif faults and i == 2:
            image_uri, unscorable[record.product_id] = layout.image("0" * 64), "image_not_found"
        elif faults and i == 4:
            image = b"\x89PNG but not really an image" * 3
            image_uri, unscorable[record.product_id] = layout.image(hashlib.sha256(image).hexdigest()), \
                "image_undecodable"
        if image_uri and image_uri != layout.image("0" * 64):
            uri.write_bytes(image_uri, image)
        rows.append({"product_id": record.product_id, "title": record.title, "title_normalized": record.title,
                     "category_path": path, "image_uri": image_uri, "image_sha256": sha,
                     "business_value": record.business_value,
                     "source": json.dumps(sources[record.product_id]) if sources else None})
    uri.write_parquet(tables.from_rows(rows, tables.PRODUCTS), layout.products)
    return Catalog(layout, [r.product_id for r in records], wrong - set(unscorable), unscorable, noisy)


def train_counts(records: list[tiny.Record]) -> dict:
    """``counts.train`` of a dataset manifest for ``records``."""
    counts: dict = {}
    for record in records:
        category = tiny.CATEGORIES[int(record.product_id.split("-c")[1].split("-")[0])]
        for level in (1, 2):
            level_counts = counts.setdefault(f"level_{level}", {})
            name = class_name(category.path, level)
            level_counts[name] = level_counts.get(name, 0) + 1
    return counts


THRESHOLDS = Thresholds(0.9, (
    LevelThreshold(1, 0.6, 0.97, 0.95, (0.3, 0.6, 0.9), (0.9, 0.97, 0.99), (1.0, 0.95, 0.6)),
    LevelThreshold(2, 0.5, 0.9, 0.8, (0.3, 0.5, 0.8, 0.95), (0.8, 0.9, 0.95, 0.99), (1.0, 0.8, 0.5, 0.2)),
))
