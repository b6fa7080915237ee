"""Helpers of the ingest tests (plain functions and constants; fixtures are in conftest.py)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from ecom_kfp.contracts.tables import PRODUCTS, REJECTS
from ecom_kfp.ingest.source_policy import SourcePolicy

#: The policy of tests whose images are served on loopback or read from temporary directories.
TRUSTED = SourcePolicy(allow_local_files=True, allow_private_networks=True)


#: The same as CLI flags.
TRUSTED_FLAGS = ["--allow-local-files", "--allow-private-networks"]


#: A name the ``dns`` fixture's server resolves to loopback, where the image server listens.
SHOP_HOST = "images.shop.test"


MYNTRA_COLUMN_MAP = ("product_id=id,title=productDisplayName,"
                     "category_path=masterCategory>subCategory>articleType,image_url=image")


def jpeg_bytes(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real JPEG with some structure (a gradient band) so truncation hits entropy-coded data."""
    image = Image.new("RGB", size, color)
    for x in range(size[0]):
        for y in range(0, size[1], 3):
            image.putpixel((x, y), ((x * 7) % 256, (y * 5) % 256, (x * y) % 256))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (40, 40)) -> bytes:
    """A PNG with transparency, to exercise the conversion to JPEG."""
    image = Image.new("RGBA", size, (0, 120, 255, 128))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def read_outputs(out: Path | str):
    """``(products, rejects)`` of an ingest output as lists of dicts, checked against the contracts."""
    from ecom_kfp import uri
    from ecom_kfp.contracts.layouts import IngestLayout

    layout = IngestLayout(str(out))
    products = uri.read_parquet(layout.products)
    rejects = uri.read_parquet(layout.rejects)
    assert products.schema.equals(PRODUCTS, check_metadata=False)
    assert rejects.schema.equals(REJECTS, check_metadata=False)
    return products.to_pylist(), rejects.to_pylist()
