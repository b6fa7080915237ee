"""Fixtures of the ingest tests: small generated images and the fault-injecting image server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ecom_kfp.contracts.tables import REJECTS, PRODUCTS
from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.ingest.source_policy import SourcePolicy
from ecom_kfp.testing.image_server import ServerConfig, ServerHandle, image_server

#: The policy of tests whose images are served on loopback or read from temporary directories.
TRUSTED = SourcePolicy(allow_local_files=True, allow_private_networks=True)
#: The same as CLI flags.
TRUSTED_FLAGS = ["--allow-local-files", "--allow-private-networks"]

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


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``a.jpg``..``e.jpg`` (distinct JPEGs), ``same.jpg`` (a copy of ``a.jpg``), ``alpha.png``."""
    root = tmp_path_factory.mktemp("images")
    colors = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (40, 200, 200)]
    for name, color in zip("abcde", colors):
        (root / f"{name}.jpg").write_bytes(jpeg_bytes(color=color))
    (root / "same.jpg").write_bytes((root / "a.jpg").read_bytes())
    (root / "alpha.png").write_bytes(png_bytes())
    return root


@pytest.fixture()
def server(image_dir: Path) -> Iterator[ServerHandle]:
    """The image server over :func:`image_dir`; slow responses take 3 s, Retry-After is 1 s."""
    with image_server(ServerConfig(str(image_dir), slow_seconds=3.0, retry_after_seconds=1)) as handle:
        yield handle


@pytest.fixture(scope="session")
def myntra_server(myntra_dir: Path) -> Iterator[ServerHandle]:
    """The myntra-dev images served over loopback."""
    with image_server(ServerConfig(str(myntra_dir / "images"))) as handle:
        yield handle


@pytest.fixture()
def fast_fetch() -> FetchConfig:
    """Short timeout and backoff so fault tests stay fast (slow responses take 3 s).

    The images are on loopback and in temporary directories, so the source policy allows both.
    """
    return FetchConfig(concurrency=8, per_host=4, timeout_seconds=0.5, max_retries=2,
                       backoff_seconds=0.01, max_backoff_seconds=2.0, policy=TRUSTED)


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
