"""Helpers of the dedupe tests (plain functions and constants; fixtures are in conftest.py)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.contracts.tables import PRODUCTS, from_rows
from ecom_kfp.dedupe import DedupeConfig, phash, run, separable, ycc


def picture(seed: int, size: tuple[int, int] = (96, 128)) -> Image.Image:
    """A distinct smooth colour picture: a random 6x6 colour field upsampled bicubically."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    return Image.fromarray(field).resize(size, Image.Resampling.BICUBIC)


def project_batch(pixels: np.ndarray, map_for: Callable[[int, int], separable.SeparableMap],
                  finish: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run a ``batch_layout`` batch through one of the hashing maps and its finishing step, as
    :func:`ecom_kfp.dedupe.image_hashes.hash_chunk` does with all of them at once."""
    height, _, width, _ = pixels.shape
    return finish(separable.project_many(pixels, [map_for(height, width)])[0])


def phash64(images: Sequence[np.ndarray]) -> np.ndarray:
    """Classic 64-bit pHashes of same-size ``(height, width, channels)`` images, the stage's way:
    luma mixed from RGB (or one channel that already is luma), ``(batch,)`` uint64."""
    pixels = separable.batch_layout(images)
    mix = ycc.RGB_TO_YCC[:1] if pixels.shape[3] == 3 else None
    return project_batch(pixels, lambda height, width: phash.low_frequency_map(height, width, mix=mix),
                         lambda low: phash.hash_words(low[:, 0])[:, 0])


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    """JPEG bytes of ``image``."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def normalize_title(title: str | None) -> str | None:
    """Stand-in for ingest's title normalisation (lower case, single spaces)."""
    return " ".join(title.lower().split()) if title is not None else None


def image_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from the header, or Nones for bytes that are no image (as a broken
    download would leave them)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except OSError:
        return None, None


def write_layout(root: Path, products: Sequence[dict]) -> Path:
    """Write an ingest layout: content-addressed images and ``products.parquet``.

    Each product dict has ``product_id``, optional ``title``, and ``image`` (JPEG bytes, or None for
    no image). Keys of the products schema given in the dict override the derived values
    (e.g. ``image_uri`` to point somewhere else, ``image_sha256`` to lie about the digest).
    """
    layout = IngestLayout(str(root))
    rows = []
    for product in products:
        data = product.get("image")
        row = {"product_id": product["product_id"], "title": product.get("title"),
               "title_normalized": normalize_title(product.get("title")),
               "category_path": product.get("category_path", ["Apparel"]), "source": json.dumps({})}
        if data is not None:
            sha = hashlib.sha256(data).hexdigest()
            uri.write_bytes(layout.image(sha), data)
            width, height = image_size(data)
            row.update(image_sha256=sha, image_uri=f"images/{sha[:2]}/{sha}.jpg",
                       image_url=f"http://127.0.0.1/{product['product_id']}.jpg", width=width, height=height)
        row.update({k: v for k, v in product.items() if k in PRODUCTS.names})
        rows.append(row)
    root.mkdir(parents=True, exist_ok=True)
    uri.write_parquet(from_rows(rows, PRODUCTS), layout.products)
    return root


def write_myntra_layout(myntra_dir: Path, root: Path) -> Path:
    """All of myntra-dev as an ingest layout, built directly from ``styles.csv`` and its JPEGs.

    Independent of the ingest stage on purpose: this checks dedupe alone on real data.
    """
    layout = IngestLayout(str(root))
    rows = []
    with open(myntra_dir / "styles.csv", newline="", encoding="utf-8") as fh:
        for record in csv.DictReader(fh):
            data = (myntra_dir / "images" / record["image"]).read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
            target = Path(layout.image(sha))
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(myntra_dir / "images" / record["image"], target)
            rows.append({
                "product_id": record["id"], "title": record["productDisplayName"],
                "title_normalized": normalize_title(record["productDisplayName"]),
                "category_path": [record["masterCategory"], record["subCategory"], record["articleType"]],
                "image_url": record["image"], "image_uri": f"images/{sha[:2]}/{sha}.jpg",
                "image_sha256": sha, "width": width, "height": height, "source": json.dumps(record),
            })
    uri.write_parquet(from_rows(rows, PRODUCTS), layout.products)
    return root


def dedupe(products_dir: Path, out: Path, **options) -> tuple[dict, list[dict], list[dict], dict]:
    """Run the stage; return kept rows by id, duplicates, rejects and the report JSON."""
    run(DedupeConfig(str(products_dir), str(out), workers=1, progress=False, **options))
    kept = {r["product_id"]: r for r in pq.read_table(out / "products.parquet").to_pylist()}
    duplicates = pq.read_table(out / "duplicates.parquet").to_pylist()
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    report = json.loads((out / "report.json").read_text())
    assert len(kept) + len(duplicates) + len(rejects) == report["input"]
    return kept, duplicates, rejects, report
