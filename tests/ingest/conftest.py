"""Fixtures of the ingest tests: small generated images, the fault-injecting image server, a DNS server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.testing.image_server import ServerConfig, ServerHandle, image_server
from ecom_kfp.testing.servers import DnsServer, dns_server
from tests.ingest.helpers import SHOP_HOST, TRUSTED, jpeg_bytes, png_bytes


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


@pytest.fixture()
def dns() -> Iterator[DnsServer]:
    """A DNS server on loopback that knows :data:`SHOP_HOST` (127.0.0.1) and answers NXDOMAIN for any
    other name, so that tests of names need no lookup leaving the machine (``--dns-servers``)."""
    with dns_server({SHOP_HOST: ["127.0.0.1"]}) as server:
        yield server
