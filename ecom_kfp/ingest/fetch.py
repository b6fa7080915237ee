"""Fetch, check and store product images concurrently on one event loop (``fetch_all``).

One asyncio event loop drives ``concurrency`` workers over a stream of sources (``http(s)://``
through one shared aiohttp session, ``gs://`` and local files through a thread pool), so at most
``concurrency`` images are in flight and memory stays flat however long the catalog is. Each host
gets at most ``per_host`` concurrent requests (politeness to a CDN or a merchant's server).

Every source passes the source policy first (:mod:`ecom_kfp.ingest.source_policy`): refused ones
are failures with their own reason and no request. Redirects are followed here, each hop checked,
and the connection pool resolves names through :class:`PolicyResolver`, with the system's resolver
or the servers of ``dns_servers`` (:class:`NameserverResolver`). Local files are read only when
regular and up to the size limit (:func:`read_local_file`).

Every attempt has one deadline, ``timeout_seconds``, covering connect, headers and body; it starts
after the host slot is acquired, so queueing behind the per-host limit never counts as a timeout.
Transient failures (timeouts, connection resets, truncated transfers, HTTP 429 and 5xx) are
retried up to ``max_retries`` times with exponential backoff and jitter, waiting at least as long
as a ``Retry-After`` header asks (capped at ``max_backoff_seconds``). A 404, any other 4xx, a name
that does not resolve, or content that is not an image is final at once. A host with
``host_failure_limit`` consecutive connection failures is not tried again (:class:`_HostBreaker`).
Decoding holds pixels of a :class:`~ecom_kfp.ingest.image_check.PixelBudget` shared by the threads.

Images above ``INLINE_MAX_BYTES``, and every
upload to a ``gs://`` store, are checked and stored in the thread pool (decoders, SHA-256 and file
writes release the GIL) so the event loop keeps downloading meanwhile and the checks use the other
cores; smaller ones cost less on the loop itself than the hop to the pool and back.

The event loop is uvloop's (libuv): with small images the client's CPU per request is the limit,
and the loop's share of it is lower there than on asyncio's default loop. One event loop is bound
by one core, so with ``processes`` > 1 that many worker processes each run this fetcher over a
share of the limits (:mod:`ecom_kfp.ingest.fetch_processes`); outcomes are the same. The default
is one process: on 2 CPUs it did as well as two worker processes or better with less CPU
(``benchmarks/bench_ingest.py``), and starts at once, where a worker process first spends CPU
importing aiohttp. More processes pay where one event loop saturates its core: many cores, small images,
a fast server.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import socket
import stat
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.nameserver
import uvloop
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ecom_kfp import __version__, uri
from ecom_kfp.ingest import sources
from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.ingest.image_check import CheckedImage, ImageProblem, PixelBudget, check_image
from ecom_kfp.ingest.reasons import Reason
from ecom_kfp.ingest.source_policy import SourcePolicy
from ecom_kfp.ingest.store import ImageStore

_T = TypeVar("_T")
_RETRYABLE_STATUS = frozenset({408, 429})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_CHUNK = 64 << 10
#: Bodies up to this size going to a local store are checked and stored on the event loop itself.
#: A thumbnail is checked and stored in ~100 us, while the hop through the thread pool and back
#: cost ~280 us of CPU more per image (GIL hand-offs included) and delays the loop; a 14 KB
#: 450x600 JPEG takes 355 us. Larger bodies decode in the pool, in parallel with downloading.
INLINE_MAX_BYTES = 16 << 10


@dataclass(frozen=True)
class FetchedImage:
    """An image that passed the checks and is in the store."""

    sha256: str
    uri: str
    width: int
    height: int
    stored_bytes: int
    downloaded_bytes: int
    newly_stored: bool
    attempts: int


@dataclass(frozen=True)
class FetchFailure:
    """A source that gave no usable image; ``attempts`` counts requests made."""

    reason: Reason
    detail: str
    attempts: int


FetchOutcome = FetchedImage | FetchFailure


@dataclass
class FetchStats:
    """Totals of one :func:`fetch_images` call."""

    sources: int = 0
    succeeded: int = 0
    failed: int = 0
    attempts: int = 0
    retries: int = 0
    bytes_downloaded: int = 0
    bytes_stored: int = 0
    images_stored: int = 0
    seconds: float = 0.0

    def count_finished(self, outcome: FetchOutcome) -> None:
        """Count one source's final outcome as a success or a failure."""
        if isinstance(outcome, FetchedImage):
            self.succeeded += 1
        else:
            self.failed += 1

    @property
    def images_per_second(self) -> float:
        return self.sources / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Body:
    data: bytes
    content_type: str | None


@dataclass(frozen=True)
class _Failed:
    reason: Reason
    detail: str
    retryable: bool = False
    retry_after: float | None = None
    connection_failed: bool = False  # no connection to the host at all (counts toward its circuit breaker)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RefusedAddress(OSError):
    """Every address a name resolved to is refused by the source policy (raised inside the connector)."""


class PolicyResolver(AbstractResolver):
    """The connection pool's resolver: drops the addresses the source policy refuses.

    aiohttp connects only to addresses its resolver returned, so a name cannot resolve to a public
    address when checked and to an internal one when connected (DNS rebinding). Literal addresses
    skip resolvers: :meth:`SourcePolicy.refusal` checks them on every hop.
    """

    def __init__(self, policy: SourcePolicy, inner: AbstractResolver | None = None):
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self._policy.address_allowed(r["host"])]
        if not allowed:
            raise RefusedAddress(f"{host} resolves only to non-public addresses "
                                 f"({', '.join(sorted({r['host'] for r in found}))}); see --allow-private-networks")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class NameserverResolver(AbstractResolver):
    """Resolves names with the DNS servers of ``--dns-servers`` instead of the system's resolver.

    There are no search domains: an image URL's host is a full name. Any failure (no such name, no
    address, no server answering within the timeout) is an unresolved name, as the system resolver's
    ``getaddrinfo`` errors are.
    """

    def __init__(self, nameservers: list[tuple[str, int]], lifetime_seconds: float):
        self._resolver = dns.asyncresolver.Resolver(configure=False)
        self._resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers]
        self._resolver.lifetime = lifetime_seconds

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        try:
            answers = await self._resolver.resolve_name(host, family)
        except dns.exception.Timeout as err:
            raise socket.gaierror(socket.EAI_AGAIN, str(err)) from err
        except dns.exception.DNSException as err:
            raise socket.gaierror(socket.EAI_NONAME, str(err)) from err
        return [ResolveResult(hostname=host, host=address, port=port, family=address_family, proto=0,
                              flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
                for address, address_family in answers.addresses_and_families()]

    async def close(self) -> None:
        """Nothing to release: dnspython opens a socket per query."""


def resolver_for(config: FetchConfig) -> PolicyResolver:
    """The connection pool's resolver: ``--dns-servers`` or the system's, behind the source policy."""
    servers = config.nameservers
    # Half the attempt's deadline, so that servers which do not answer end the attempt as an unresolved
    # name (with the servers' error) rather than racing the attempt's own timeout.
    inner = NameserverResolver(servers, config.timeout_seconds / 2) if servers else None
    return PolicyResolver(config.policy, inner)


class _HostBreaker:
    """Per-host circuit breaker: a host with ``limit`` consecutive connection failures is not tried again.

    Dead hosts in an old feed otherwise cost every product full retries with backoff. Any response,
    even an error status, shows the host is up and resets its count.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._failures: dict[str, int] = defaultdict(int)

    def is_open(self, host: str) -> bool:
        return self._failures[host] >= self.limit

    def record(self, host: str, connection_failed: bool) -> None:
        if connection_failed:
            self._failures[host] += 1
        else:
            self._failures.pop(host, None)


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_local_file(path: str, limit: int) -> _Body | _Failed:
    """Read a regular file of at most ``limit`` bytes; FIFOs, devices and directories are refused unread.

    The file is opened without blocking (a FIFO with no writer would block ``open`` forever) and
    checked on the open descriptor, so a path swapped between check and read changes nothing; at
    most ``limit + 1`` bytes are read whatever the file claims its size is (``/proc`` files say 0).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except (FileNotFoundError, NotADirectoryError) as err:
        return _Failed(Reason.NOT_FOUND, str(err))
    except OSError as err:
        return _Failed(Reason.READ_ERROR, str(err))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        return _Failed(Reason.NOT_A_REGULAR_FILE, f"{_file_kind(mode)}, not read")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as err:
            return _Failed(Reason.READ_ERROR, str(err))
    if len(data) > limit:
        return _Failed(Reason.TOO_LARGE, f"file larger than {limit} bytes")
    return _Body(data, None)


def _read_gcs_object(source: str, limit: int) -> _Body | _Failed:
    """Read at most ``limit + 1`` bytes of a ``gs://`` object (a ranged download bounds memory)."""
    from google.api_core import exceptions

    bucket, key = uri.split_gcs(source)
    try:
        data = uri.gcs_client().bucket(bucket).blob(key).download_as_bytes(start=0, end=limit)
    except exceptions.NotFound:
        return _Failed(Reason.NOT_FOUND, "no such object")
    except exceptions.RequestRangeNotSatisfiable:  # an empty object
        data = b""
    except Exception as err:  # google-cloud-storage errors: retry the server-side ones
        transient = isinstance(err, (exceptions.ServerError, exceptions.TooManyRequests))
        return _Failed(Reason.READ_ERROR, f"{type(err).__name__}: {err}", retryable=transient)
    if len(data) > limit:
        return _Failed(Reason.TOO_LARGE, f"object larger than {limit} bytes")
    return _Body(data, None)


class _Fetcher:
    def __init__(self, store: ImageStore, config: FetchConfig, session: aiohttp.ClientSession,
                 pool: ThreadPoolExecutor, stats: FetchStats, budget: PixelBudget):
        self.store = store
        self.config = config
        self.session = session
        self.pool = pool
        self.stats = stats
        self.budget = budget
        self._host_slots: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(config.per_host))
        self._breaker = _HostBreaker(config.host_failure_limit)
        self._random = random.Random()

    async def _in_pool(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def fetch(self, source: str) -> FetchOutcome:
        refusal = self.config.policy.refusal(source)
        if refusal is not None:
            return FetchFailure(refusal[0], refusal[1], attempts=0)
        host = urllib.parse.urlsplit(source).netloc if sources.kind(source) == sources.HTTP else None
        attempts = 0
        got: _Body | _Failed | None = None
        while True:
            if host is not None and self._breaker.is_open(host):
                given_up = f"{host} had {self._breaker.limit} consecutive connection failures (--host-failure-limit)"
                if isinstance(got, _Failed):  # this source's own failure stays its reason
                    return FetchFailure(got.reason, f"{got.detail} (after {attempts} attempts; then {given_up})",
                                        attempts)
                return FetchFailure(Reason.HOST_UNAVAILABLE, f"not tried: {given_up}", attempts)
            attempts += 1
            self.stats.attempts += 1
            got = await self._attempt(source)
            if host is not None:
                self._breaker.record(host, isinstance(got, _Failed) and got.connection_failed)
            if isinstance(got, _Body):
                break
            if not got.retryable or attempts > self.config.max_retries:
                suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
                return FetchFailure(got.reason, got.detail + suffix, attempts)
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(attempts, got.retry_after))
        self.stats.bytes_downloaded += len(got.data)
        if len(got.data) <= INLINE_MAX_BYTES and self.store.is_local:
            checked, newly = self._check_and_store(got)
        else:
            checked, newly = await self._in_pool(self._check_and_store, got)
        if not isinstance(checked, CheckedImage):
            return FetchFailure(checked.reason, checked.detail, attempts)
        if newly:
            self.stats.images_stored += 1
            self.stats.bytes_stored += len(checked.data)
        return FetchedImage(checked.sha256, self.store.uri_of(checked.sha256), checked.width,
                            checked.height, len(checked.data), len(got.data), newly, attempts)

    def _check_and_store(self, body: _Body) -> tuple[CheckedImage | ImageProblem, bool]:
        checked = check_image(body.data, body.content_type, self.config.limits, self.budget)
        if not isinstance(checked, CheckedImage):
            return checked, False
        return checked, self.store.put(checked.sha256, checked.data)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = self.config.backoff_seconds * 2 ** (attempt - 1) * self._random.uniform(0.5, 1.5)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.config.max_backoff_seconds)

    async def _attempt(self, source: str) -> _Body | _Failed:
        if sources.kind(source) == sources.HTTP:
            return await self._http(source)
        limit = self.config.limits.max_bytes
        read = _read_gcs_object if uri.is_gcs(source) else read_local_file
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                return await self._in_pool(read, source, limit)
        except TimeoutError:
            return _Failed(Reason.TIMEOUT, f"not read within {self.config.timeout_seconds}s", retryable=True)

    async def _http(self, url: str) -> _Body | _Failed:
        host = urllib.parse.urlsplit(url).netloc
        async with self._host_slots[host]:
            try:
                async with asyncio.timeout(self.config.timeout_seconds):
                    return await self._follow(url)
            except TimeoutError:
                return _Failed(Reason.TIMEOUT, f"no complete response within {self.config.timeout_seconds}s",
                               retryable=True)
            except aiohttp.ClientPayloadError as err:
                return _Failed(Reason.TRUNCATED_DOWNLOAD, f"transfer cut short: {err}", retryable=True)
            except aiohttp.ClientConnectorDNSError as err:
                if isinstance(err.os_error, RefusedAddress):
                    return _Failed(Reason.PRIVATE_ADDRESS_REFUSED, str(err.os_error))
                # Not retried: a name that does not resolve now will not resolve a second later.
                return _Failed(Reason.NAME_NOT_RESOLVED, f"{err.host}: {err.os_error}", connection_failed=True)
            except aiohttp.ClientConnectorError as err:
                return _Failed(Reason.CONNECTION_ERROR, f"{type(err).__name__}: {err}", retryable=True,
                               connection_failed=True)
            except aiohttp.ClientConnectionError as err:
                return _Failed(Reason.CONNECTION_ERROR, f"{type(err).__name__}: {err}", retryable=True)
            except aiohttp.InvalidURL as err:
                return _Failed(Reason.BAD_IMAGE_URL, f"invalid URL: {err}")
            except aiohttp.ClientError as err:  # malformed response
                return _Failed(Reason.HTTP_ERROR, f"{type(err).__name__}: {err}")

    async def _follow(self, url: str) -> _Body | _Failed:
        """GET ``url``, following redirects here so that the source policy judges every hop."""
        for _ in range(_MAX_REDIRECTS + 1):
            async with self.session.get(url, allow_redirects=False) as resp:
                location = resp.headers.get("Location") if resp.status in _REDIRECT_STATUS else None
                if location is None:
                    return await self._body(resp, url)
            target = urllib.parse.urljoin(url, location)
            if sources.kind(target) != sources.HTTP:
                return _Failed(Reason.BAD_IMAGE_URL, f"redirected to {target}: not an http(s) URL")
            refusal = self.config.policy.refusal(target)
            if refusal is not None:
                return _Failed(refusal[0], f"redirected to {target}: {refusal[1]}")
            url = target
        return _Failed(Reason.HTTP_ERROR, f"more than {_MAX_REDIRECTS} redirects")

    async def _body(self, resp: aiohttp.ClientResponse, url: str) -> _Body | _Failed:
        redirected = f" (redirected to {url})" if str(resp.url) != url else ""
        if resp.status in (404, 410):
            return _Failed(Reason.NOT_FOUND, f"HTTP {resp.status}{redirected}")
        if resp.status >= 300:
            transient = resp.status >= 500 or resp.status in _RETRYABLE_STATUS
            return _Failed(Reason.HTTP_ERROR, f"HTTP {resp.status}{redirected}", retryable=transient,
                           retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
        limit = self.config.limits.max_bytes
        if resp.content_length is not None:
            if resp.content_length > limit:
                return _Failed(Reason.TOO_LARGE, f"Content-Length {resp.content_length} > {limit}")
            return _Body(await resp.read(), resp.headers.get("Content-Type"))
        body = bytearray()  # no length announced: read in chunks, stop at the limit
        async for chunk in resp.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > limit:
                return _Failed(Reason.TOO_LARGE, f"body exceeds {limit} bytes")
        return _Body(bytes(body), resp.headers.get("Content-Type"))


SourceQueue = Callable[[], Awaitable[str | None]]
"""Gives the next source to fetch, or None when there are no more."""

#: Yielded by a stream of sources that has none to give until some in flight finish (its consumer
#: holds a bounded window of work): the fetcher asks again shortly instead of ending.
WAIT = "<wait>"
#: How long a worker told to :data:`WAIT` sleeps before asking again.
WAIT_SECONDS = 0.01


def sources_of(items: Iterable[str]) -> SourceQueue:
    """A :data:`SourceQueue` over an iterable, read lazily; :data:`WAIT` items are waited out."""
    pending = iter(items)

    async def next_source() -> str | None:
        while (item := next(pending, None)) is WAIT:
            await asyncio.sleep(WAIT_SECONDS)
        return item

    return next_source


def run_event_loop(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` to completion on a new uvloop event loop (Ctrl-C cancels it, as ``asyncio.run``)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def fetch_all(next_source: SourceQueue, store: ImageStore, config: FetchConfig,
                    on_result: Callable[[str, FetchOutcome], None], stats: FetchStats) -> None:
    """Fetch every source ``next_source`` gives on this event loop, ``config.concurrency`` at a time."""
    connector = aiohttp.TCPConnector(limit=config.concurrency, limit_per_host=config.per_host,
                                     ttl_dns_cache=300, resolver=resolver_for(config))
    # Per-attempt deadlines are ours (see module docstring); the session only bounds connecting.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.timeout_seconds)
    headers = {"User-Agent": f"ecom-kfp/{__version__} (+image ingest)"}
    with ThreadPoolExecutor(config.io_threads, thread_name_prefix="ingest-io") as pool:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
            fetcher = _Fetcher(store, config, session, pool, stats, PixelBudget(config.decode_pixel_budget))

            async def worker() -> None:
                # Workers share one queue: a source is taken only when a worker is free for it.
                while (source := await next_source()) is not None:
                    stats.sources += 1
                    outcome = await fetcher.fetch(source)
                    stats.count_finished(outcome)
                    on_result(source, outcome)

            async with asyncio.TaskGroup() as group:
                for _ in range(config.concurrency):
                    group.create_task(worker())
