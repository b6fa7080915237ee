"""What the benchmarks share: where myntra-dev is, its products, a dedupe-shaped table of them, and
a stdout kept for the one JSON document each benchmark prints.

Benchmarks run as scripts (``python benchmarks/bench_<name>.py``), which puts ``benchmarks/`` on
``sys.path``, so they ``from _common import ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.layouts import DedupeLayout

REPO = Path(__file__).resolve().parents[1]
#: ``styles.csv`` + ``images/``; ``ECOM_KFP_SHARED_DATA`` points at another copy of the shared data.
MYNTRA = Path(os.environ.get("ECOM_KFP_SHARED_DATA", REPO.parent / "shared" / "data")) / "myntra-dev"


def process_status_kb(field: str, pid: int | str = "self") -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (default: this process's): ``VmRSS`` (now) or ``VmHWM``
    (its peak).

    For a peak, use ``VmHWM``, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across fork and exec,
    so a process a benchmark starts would report the benchmark's own peak when that is larger.
    """
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(f"{field}:"))


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send whatever is written to stdout meanwhile to stderr, down to file descriptor 1, so that
    Keras' epoch lines and ``horovodrun``'s children do not mix into the one JSON document a
    benchmark prints on stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def add_myntra_flag(parser: argparse.ArgumentParser, flag: str = "--myntra") -> None:
    """The flag naming the myntra-dev directory (a :class:`~pathlib.Path`, default :data:`MYNTRA`)."""
    parser.add_argument(flag, type=Path, default=MYNTRA, help="myntra-dev directory (styles.csv + images/)")


def myntra_products(myntra: Path, limit: int) -> list[dict]:
    """The first ``limit`` myntra-dev products whose image exists, as products-table fields (the
    catalog row in ``source``, as ingest keeps it)."""
    with open(myntra / "styles.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if (myntra / "images" / r["image"]).exists()][:limit]
    return [{"product_id": r["id"], "title": r["productDisplayName"],
             "category_path": [r["masterCategory"], r["subCategory"], r["articleType"]],
             "image_uri": str(myntra / "images" / r["image"]), "source": json.dumps(r)} for r in rows]


def write_deduped_products(products: list[dict], root: Path, groups: dict[str, str] | None = None) -> DedupeLayout:
    """Write ``products`` under ``root`` as a dedupe output (value 1), the build's input; each product
    is its own group unless ``groups`` maps its id to a group id."""
    groups = groups or {}
    sizes = Counter(groups.get(p["product_id"], p["product_id"]) for p in products)
    rows = [{**p, "title_normalized": p["title"].lower(), "business_value": 1.0,
             "group_id": (group := groups.get(p["product_id"], p["product_id"])), "group_size": sizes[group]}
            for p in products]
    layout = DedupeLayout(str(root))
    uri.write_parquet(tables.from_rows(rows, tables.DEDUPED_PRODUCTS), layout.products)
    return layout
