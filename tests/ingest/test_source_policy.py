"""The source policy (issue 19, item 1): a merchant catalog cannot make ingest read local files,
internal addresses or arbitrary buckets, and no source bytes reach ``rejects.parquet``.

All servers are real and on loopback: the image server, and a small redirecting server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from ecom_kfp.ingest import IngestConfig, run
from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.ingest.fetch import FetchedImage, FetchFailure
from ecom_kfp.ingest.reasons import Reason
from ecom_kfp.ingest.source_policy import SourcePolicy, is_public
from ecom_kfp.testing.image_server import ServerHandle
from ecom_kfp.testing.servers import LOOPBACK, DnsServer, free_port
from tests.ingest.helpers import SHOP_HOST, TRUSTED, read_outputs

from .test_fetch import fetch


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "192.168.1.1",
                                     "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "240.0.0.1",
                                     "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
                                     "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
                                     "2002:7f00:1::1"])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(address)
    assert not SourcePolicy().address_allowed(address)
    assert SourcePolicy(allow_private_networks=True).address_allowed(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2606:4700::6810:84e5", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(address)


@contextlib.contextmanager
def redirector() -> Iterator[str]:
    """A real server on loopback whose ``/to?url=U`` answers 302 to ``U``."""
    async def to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["url"])

    app = web.Application()
    app.router.add_get("/to", to)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(app)
    port = free_port()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, port).start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def test_default_policy_refuses_local_internal_and_bucket_sources(server: ServerHandle, image_dir: Path,
                                                                   tmp_path: Path) -> None:
    """Every hostile reference of the issue is a reject with its own reason; nothing is read."""
    port = server.base_url.rsplit(":", 1)[1]
    (tmp_path / "secret.jpg").write_bytes((image_dir / "a.jpg").read_bytes())  # a local JPEG
    hostile = {
        "file": ("file:///etc/passwd", Reason.LOCAL_SOURCE_REFUSED),
        "file-upper": ("FILE:///etc/passwd", Reason.LOCAL_SOURCE_REFUSED),
        "environ": ("/proc/self/environ", Reason.LOCAL_SOURCE_REFUSED),
        "relative": ("../../etc/passwd", Reason.LOCAL_SOURCE_REFUSED),
        "local-jpeg": (str(tmp_path / "secret.jpg"), Reason.LOCAL_SOURCE_REFUSED),
        "loopback": (server.url("a.jpg"), Reason.PRIVATE_ADDRESS_REFUSED),
        "localhost": (f"http://localhost:{port}/img/a.jpg", Reason.PRIVATE_ADDRESS_REFUSED),
        "ipv6-loopback": (f"http://[::1]:{port}/img/a.jpg", Reason.PRIVATE_ADDRESS_REFUSED),
        "metadata": ("http://169.254.169.254/computeMetadata/v1/", Reason.PRIVATE_ADDRESS_REFUSED),
        "private": ("http://10.0.0.1/a.jpg", Reason.PRIVATE_ADDRESS_REFUSED),
        "bucket": ("gs://someone-elses-bucket/a.jpg", Reason.GCS_BUCKET_REFUSED),
    }
    rows = [{"product_id": pid, "title": f"Cotton shirt model {pid}", "category_path": "Apparel > Shirts",
             "image_url": ref} for pid, (ref, _) in hostile.items()]
    catalog = tmp_path / "catalog" / "catalog.jsonl"
    catalog.parent.mkdir()
    catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
    server.reset()
    report = run(IngestConfig(catalog=str(catalog), out=str(tmp_path / "out"), progress=False))
    products, rejects = read_outputs(tmp_path / "out")
    assert products == [] and report.accepted == 0
    assert report.accepted + report.rejected == report.input_records == len(hostile)
    expected = {pid: reason.value for pid, (_, reason) in hostile.items()}
    assert {r["product_id"]: r["reason"] for r in rejects} == expected
    assert server.stats()["by_path"].get("/img/a.jpg", 0) == 0  # not even one request reached it
    assert report.images.attempts == 1  # localhost alone: its name resolved, then refused before connecting
    text = (tmp_path / "out" / "rejects.parquet").read_bytes()
    assert b"root:" not in text


def test_the_flags_let_the_operator_allow_them(server: ServerHandle, image_dir: Path, gcs_bucket: str,
                                               tmp_path: Path) -> None:
    from ecom_kfp import uri

    uri.write_bytes(f"{gcs_bucket}/img/b.jpg", (image_dir / "b.jpg").read_bytes())
    sources = [server.url("a.jpg"), str(image_dir / "c.jpg"), f"{gcs_bucket}/img/b.jpg"]
    policy = dataclasses.replace(TRUSTED, allow_gcs_buckets=f"other,{gcs_bucket}")
    outcomes, _ = fetch(sources, tmp_path, FetchConfig(policy=policy, timeout_seconds=5))
    assert all(isinstance(outcomes[s], FetchedImage) for s in sources)


def test_non_images_are_described_without_their_bytes(fast_fetch: FetchConfig, tmp_path: Path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    outcome = fetch([str(secret)], tmp_path / "out", fast_fetch)[0][str(secret)]
    assert outcome.reason is Reason.NOT_AN_IMAGE
    assert "root" not in outcome.detail and "bytes" in outcome.detail


@dataclass(frozen=True)
class _FirstHopOnly(SourcePolicy):
    """Allows 127.0.0.1 only, so a redirect to another loopback address stands for one to an internal host."""

    def address_allowed(self, address: str) -> bool:
        return address == LOOPBACK


def test_every_redirect_hop_is_checked(server: ServerHandle, fast_fetch: FetchConfig, tmp_path: Path) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    config = dataclasses.replace(fast_fetch, policy=_FirstHopOnly())
    with redirector() as base:
        allowed = f"{base}/to?url={server.url('a.jpg')}"
        internal = f"{base}/to?url=http://127.0.0.2:{port}/img/a.jpg"
        to_file = f"{base}/to?url=file:///etc/passwd"
        outcomes, _ = fetch([allowed, internal, to_file], tmp_path, config)
    assert isinstance(outcomes[allowed], FetchedImage)
    assert outcomes[internal].reason is Reason.PRIVATE_ADDRESS_REFUSED and "redirected to" in outcomes[internal].detail
    assert outcomes[to_file].reason is Reason.BAD_IMAGE_URL


def test_a_name_resolving_to_loopback_is_refused_at_connection(server: ServerHandle, fast_fetch: FetchConfig,
                                                               tmp_path: Path) -> None:
    """``localhost`` passes the literal check; the pool's resolver drops its addresses before connecting."""
    port = server.base_url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/img/a.jpg"
    server.reset()
    outcome = fetch([url], tmp_path, dataclasses.replace(fast_fetch, policy=SourcePolicy()))[0][url]
    assert isinstance(outcome, FetchFailure) and outcome.reason is Reason.PRIVATE_ADDRESS_REFUSED
    assert outcome.attempts == 1
    assert server.stats()["by_path"].get("/img/a.jpg", 0) == 0


def test_a_name_the_dns_server_points_at_loopback_is_refused(server: ServerHandle, dns: DnsServer,
                                                             fast_fetch: FetchConfig, tmp_path: Path) -> None:
    """A merchant's own name server can answer with an internal address: its answer is judged, not the name."""
    url = server.url("a.jpg").replace("127.0.0.1", SHOP_HOST)
    server.reset()
    config = dataclasses.replace(fast_fetch, policy=SourcePolicy(), dns_servers=dns.address)
    outcome = fetch([url], tmp_path, config)[0][url]
    assert isinstance(outcome, FetchFailure) and outcome.reason is Reason.PRIVATE_ADDRESS_REFUSED
    assert "127.0.0.1" in outcome.detail and (SHOP_HOST, "A") in dns.queries
    assert server.stats()["by_path"].get("/img/a.jpg", 0) == 0
