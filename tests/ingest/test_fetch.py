"""``fetch_images`` against the real fault-injecting server on loopback, one fault kind at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import socket
from pathlib import Path

import pytest
import uvloop
from PIL import Image

from ecom_kfp import uri
from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.ingest.download import fetch_images
from ecom_kfp.ingest.fetch import (
    INLINE_MAX_BYTES,
    FetchConfig,
    FetchedImage,
    FetchFailure,
    _Fetcher,
    retry_after_seconds,
    run_event_loop,
)
from ecom_kfp.ingest.reasons import Reason
from ecom_kfp.ingest.store import ImageStore
from ecom_kfp.testing.image_server import Fault, ServerConfig, ServerHandle, image_server
from ecom_kfp.testing.servers import DnsServer
from tests.ingest.helpers import SHOP_HOST, TRUSTED, jpeg_bytes


def fetch(sources: list[str], out: Path | str, config: FetchConfig):
    outcomes = {}
    stats = fetch_images(sources, ImageStore(IngestLayout(str(out))), config, outcomes.__setitem__)
    assert set(outcomes) == set(sources) and stats.sources == len(sources)
    return outcomes, stats


@pytest.mark.parametrize(("fault", "reason", "requests"), [
    (Fault.NOT_FOUND, Reason.NOT_FOUND, 1),
    (Fault.GONE, Reason.NOT_FOUND, 1),
    (Fault.FORBIDDEN, Reason.HTTP_ERROR, 1),
    (Fault.SERVER_ERROR, Reason.HTTP_ERROR, 3),
    (Fault.SLOW, Reason.TIMEOUT, 3),
    (Fault.HTML, Reason.NOT_AN_IMAGE, 1),
    (Fault.HTML_PAGE, Reason.NOT_AN_IMAGE, 1),
    (Fault.REDIRECT_TO_HTML, Reason.NOT_AN_IMAGE, 1),
    (Fault.TRUNCATED_BODY, Reason.TRUNCATED_DOWNLOAD, 3),
    (Fault.TRUNCATED_FILE, Reason.TRUNCATED_IMAGE, 1),
    (Fault.CORRUPT, Reason.CORRUPT_IMAGE, 1),
    (Fault.TINY, Reason.TOO_SMALL, 1),
])
def test_permanent_faults_are_rejected_with_their_reason(server: ServerHandle, fast_fetch: FetchConfig,
                                                         tmp_path: Path, fault: Fault, reason: Reason,
                                                         requests: int) -> None:
    """Final answers are not retried; transient ones are, ``max_retries`` (2) times."""
    url = server.url("b.jpg", fault)
    outcomes, stats = fetch([url], tmp_path, fast_fetch)
    outcome = outcomes[url]
    assert isinstance(outcome, FetchFailure), outcome
    assert outcome.reason is reason, outcome.detail
    assert outcome.attempts == requests and stats.retries == requests - 1
    assert server.requests_for(url) == requests
    assert not (tmp_path / "images").exists()


def test_small_images_are_checked_on_the_loop_and_large_ones_in_the_pool(
        fast_fetch: FetchConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths store the image; a spy on the hop to the thread pool shows which one each took."""
    noise = io.BytesIO()
    Image.effect_noise((400, 300), 64).convert("RGB").save(noise, format="JPEG", quality=95)
    images = {"small.jpg": jpeg_bytes(), "large.jpg": noise.getvalue()}
    assert len(images["small.jpg"]) <= INLINE_MAX_BYTES < len(images["large.jpg"])
    served = tmp_path / "served"
    served.mkdir()
    for name, data in images.items():
        (served / name).write_bytes(data)
    hops = []
    to_pool = _Fetcher._in_pool

    async def counted(self: _Fetcher, fn, *args):
        hops.append(len(args[0].data))
        return await to_pool(self, fn, *args)

    monkeypatch.setattr(_Fetcher, "_in_pool", counted)
    with image_server(ServerConfig(str(served))) as handle:
        urls = {name: handle.url(name) for name in images}
        outcomes, _ = fetch(list(urls.values()), tmp_path / "out", fast_fetch)
    assert hops == [len(images["large.jpg"])]
    for name, url in urls.items():
        assert isinstance(outcomes[url], FetchedImage) and Path(outcomes[url].uri).read_bytes() == images[name]


def test_connection_reset_every_time_is_a_connection_error(server: ServerHandle, fast_fetch: FetchConfig,
                                                           tmp_path: Path) -> None:
    url = server.url("b.jpg", Fault.RESET)
    outcome = fetch([url], tmp_path, fast_fetch)[0][url]
    assert outcome.reason is Reason.CONNECTION_ERROR and outcome.attempts == 3
    # aiohttp itself may resend once on a dropped keep-alive connection, so at least one each.
    assert server.requests_for(url) >= 3


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR_ONCE, Fault.SLOW_ONCE, Fault.TRUNCATED_BODY_ONCE,
                                   Fault.RESET_ONCE])
def test_transient_faults_recover_on_retry(server: ServerHandle, fast_fetch: FetchConfig, tmp_path: Path,
                                           image_dir: Path, fault: Fault) -> None:
    url = server.url("c.jpg", fault)
    outcome = fetch([url], tmp_path, fast_fetch)[0][url]
    assert isinstance(outcome, FetchedImage)
    assert outcome.attempts in (1, 2)  # a reset may be absorbed by aiohttp's own resend
    assert server.requests_for(url) == 2
    data = (image_dir / "c.jpg").read_bytes()
    assert outcome.sha256 == hashlib.sha256(data).hexdigest()
    assert Path(outcome.uri).read_bytes() == data


def test_429_waits_for_retry_after(server: ServerHandle, fast_fetch: FetchConfig, tmp_path: Path) -> None:
    url = server.url("d.jpg", Fault.RATE_LIMITED_ONCE)
    outcome = fetch([url], tmp_path, fast_fetch)[0][url]
    assert isinstance(outcome, FetchedImage) and outcome.attempts == 2
    first, second = server.stats()["times"][url[len(server.base_url):]]
    assert second - first >= 1.0  # Retry-After: 1, far above the 0.01 s backoff


def test_no_retries_when_disabled(server: ServerHandle, fast_fetch: FetchConfig, tmp_path: Path) -> None:
    url = server.url("b.jpg", Fault.SERVER_ERROR_ONCE)
    outcome = fetch([url], tmp_path, dataclasses.replace(fast_fetch, max_retries=0))[0][url]
    assert outcome.reason is Reason.HTTP_ERROR and "HTTP 500" in outcome.detail
    assert server.requests_for(url) == 1


def test_identical_content_is_stored_once_and_png_becomes_jpeg(server: ServerHandle, fast_fetch: FetchConfig,
                                                               tmp_path: Path) -> None:
    urls = [server.url("a.jpg"), server.url("same.jpg"), server.url("alpha.png")]
    outcomes, stats = fetch(urls, tmp_path, fast_fetch)
    a, same, png = (outcomes[u] for u in urls)
    assert a.sha256 == same.sha256 and {a.newly_stored, same.newly_stored} == {True, False}
    assert png.uri.endswith(".jpg") and Path(png.uri).read_bytes()[:3] == b"\xff\xd8\xff"
    assert stats.images_stored == 2
    assert sorted(p.name for p in (tmp_path / "images").rglob("*.jpg")) == sorted(
        [f"{a.sha256}.jpg", f"{png.sha256}.jpg"])
    assert Path(a.uri).parent.name == a.sha256[:2]


def test_per_host_limit_bounds_concurrent_requests(image_dir: Path, tmp_path: Path) -> None:
    from ecom_kfp.testing.image_server import ServerConfig, image_server

    with image_server(ServerConfig(str(image_dir), latency_seconds=0.05)) as slow_server:
        urls = [slow_server.url(f"{n}.jpg") + f"?v={i}" for i in range(10) for n in "abcde"]
        config = FetchConfig(concurrency=32, per_host=3, timeout_seconds=5, policy=TRUSTED)
        outcomes, _ = fetch(urls, tmp_path, config)
        assert all(isinstance(o, FetchedImage) for o in outcomes.values())
        assert slow_server.stats()["max_in_flight"] == 3


def test_local_and_gcs_sources(image_dir: Path, gcs_bucket: str, fast_fetch: FetchConfig, tmp_path: Path) -> None:
    gcs_image = f"{gcs_bucket}/img/e.jpg"
    uri.write_bytes(gcs_image, (image_dir / "e.jpg").read_bytes())
    sources = [str(image_dir / "d.jpg"), gcs_image, str(image_dir / "missing.jpg"), f"{gcs_bucket}/img/missing.jpg"]
    fetch_config = dataclasses.replace(fast_fetch, policy=dataclasses.replace(TRUSTED, allow_gcs_buckets=gcs_bucket))
    outcomes, _ = fetch(sources, tmp_path, fetch_config)
    assert isinstance(outcomes[sources[0]], FetchedImage)
    assert isinstance(outcomes[sources[1]], FetchedImage)
    assert outcomes[sources[2]].reason is Reason.NOT_FOUND
    assert outcomes[sources[3]].reason is Reason.NOT_FOUND


def test_images_stored_on_gcs(server: ServerHandle, gcs_bucket: str, fast_fetch: FetchConfig) -> None:
    url = server.url("a.jpg")
    outcome = fetch([url], f"{gcs_bucket}/out", fast_fetch)[0][url]
    assert outcome.uri == f"{gcs_bucket}/out/images/{outcome.sha256[:2]}/{outcome.sha256}.jpg"
    assert hashlib.sha256(uri.read_bytes(outcome.uri)).hexdigest() == outcome.sha256


def test_connection_refused(fast_fetch: FetchConfig, tmp_path: Path) -> None:
    from ecom_kfp.testing.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/img/a.jpg"
    outcome = fetch([url], tmp_path, fast_fetch)[0][url]
    assert outcome.reason is Reason.CONNECTION_ERROR and outcome.attempts == 3


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_fetching_runs_on_uvloop() -> None:
    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert run_event_loop(loop_type()) is uvloop.Loop


def test_unresolvable_names_are_not_retried(dns: DnsServer, fast_fetch: FetchConfig, tmp_path: Path) -> None:
    url = "http://images.closed-shop.invalid/a.jpg"
    outcome = fetch([url], tmp_path, dataclasses.replace(fast_fetch, dns_servers=dns.address))[0][url]
    assert outcome.reason is Reason.NAME_NOT_RESOLVED and outcome.attempts == 1
    assert "does not exist" in outcome.detail
    assert {name for name, _ in dns.queries} == {"images.closed-shop.invalid"}


def test_names_resolve_through_the_dns_servers_given(server: ServerHandle, dns: DnsServer, fast_fetch: FetchConfig,
                                                     tmp_path: Path) -> None:
    """``--dns-servers`` replaces the system's resolver: the shop's name is known to the loopback server only."""
    url = server.url("a.jpg").replace("127.0.0.1", SHOP_HOST)
    outcome = fetch([url], tmp_path, dataclasses.replace(fast_fetch, dns_servers=dns.address))[0][url]
    assert isinstance(outcome, FetchedImage)
    assert (SHOP_HOST, "A") in dns.queries


def test_a_silent_dns_server_fails_the_name_within_the_timeout(fast_fetch: FetchConfig, tmp_path: Path) -> None:
    """A DNS server that never answers (a bound UDP port nobody reads) costs half an attempt's deadline."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        config = dataclasses.replace(fast_fetch, dns_servers=f"127.0.0.1:{silent.getsockname()[1]}")
        url = f"http://{SHOP_HOST}/a.jpg"
        outcome = fetch([url], tmp_path, config)[0][url]
    assert outcome.reason is Reason.NAME_NOT_RESOLVED and outcome.attempts == 1
    assert "timed out" in outcome.detail


def test_dead_hosts_are_given_up_after_a_run_of_connection_failures(server: ServerHandle, dns: DnsServer,
                                                                    fast_fetch: FetchConfig, tmp_path: Path) -> None:
    """A feed whose image hosts are gone costs a few attempts per host, not full retries per product."""
    from ecom_kfp.testing.servers import free_port

    port = free_port()  # nothing listens there
    refused = [f"http://127.0.0.1:{port}/img/{i}.jpg" for i in range(40)]
    unresolvable = [f"http://images.closed-shop.invalid/{i}.jpg" for i in range(40)]
    alive = [server.url(f"{name}.jpg") for name in "abcde"]
    config = dataclasses.replace(fast_fetch, host_failure_limit=4, backoff_seconds=0.2, concurrency=4, per_host=4,
                                 dns_servers=dns.address)
    outcomes, stats = fetch(refused + unresolvable + alive, tmp_path, config)
    assert all(isinstance(outcomes[url], FetchedImage) for url in alive)
    for dead, first_reason in ((refused, Reason.CONNECTION_ERROR), (unresolvable, Reason.NAME_NOT_RESOLVED)):
        reasons = [outcomes[url].reason for url in dead]
        assert set(reasons) == {first_reason, Reason.HOST_UNAVAILABLE}
        assert reasons.count(Reason.HOST_UNAVAILABLE) >= len(dead) - config.host_failure_limit - config.concurrency
        skipped = next(outcomes[url] for url in dead if outcomes[url].reason is Reason.HOST_UNAVAILABLE)
        assert "--host-failure-limit" in skipped.detail
    # Without the breaker: 40 x 3 attempts on the refused port and 40 x 3 lookups of the dead name.
    per_host = (config.host_failure_limit + config.concurrency) * (1 + config.max_retries)
    assert stats.attempts <= len(alive) + 2 * per_host
    # A failed lookup is not cached, so each attempt on the dead name asked the server once.
    assert len(dns.queries) <= config.host_failure_limit + config.concurrency
