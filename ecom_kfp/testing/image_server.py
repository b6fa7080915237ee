"""A fault-injecting image server on 127.0.0.1, for ingest tests, benchmarks and the demo.

It serves the files of a directory at ``/img/<name>`` and injects faults two ways:

- by rule: ``/f/<fault>/<name>`` always applies ``<fault>`` (see :class:`Fault`) to ``<name>``;
- by a seeded fraction: a ``fault_fraction`` share of ``/img/`` names, chosen by a hash of
  ``(seed, name)`` so the same names fail on every run, get one of ``fraction_faults``.

A fixed ``latency_seconds`` before every response models a CDN's round trip. ``*_once`` faults hit
the first ``transient_count`` requests of a path and then serve normally, so retries can recover.
``GET /_stats`` returns request counters (per path, per status, peak concurrency, per-path request
times) for asserting retry behaviour, and the serving process's CPU seconds (so a benchmark on a
shared machine can tell what the server itself costs); ``POST /_reset`` clears the counters.

Run in a thread of the current process (tests) or as a separate process (benchmarks, so the
server does not share the client's interpreter): ``python -m ecom_kfp.testing.image_server``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import hashlib
import io
import json
import mimetypes
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ecom_kfp.testing.servers import LOOPBACK, free_port, stop_process, wait_http


class Fault(str, enum.Enum):
    """What the server does instead of (or before) serving the file."""

    NOT_FOUND = "404"
    GONE = "410"
    FORBIDDEN = "403"
    SERVER_ERROR = "500"  # every time
    SERVER_ERROR_ONCE = "500-once"  # then the file
    RATE_LIMITED_ONCE = "429-once"  # with Retry-After, then the file
    SLOW = "slow"  # waits slow_seconds before answering, every time
    SLOW_ONCE = "slow-once"
    HTML = "html"  # an HTML error page labelled image/jpeg
    HTML_PAGE = "html-page"  # an HTML page labelled text/html
    REDIRECT_TO_HTML = "redirect-html"  # 302 to an HTML page
    TRUNCATED_BODY = "truncated-body"  # full Content-Length, half the body, then the connection closes
    TRUNCATED_BODY_ONCE = "truncated-body-once"
    TRUNCATED_FILE = "truncated-file"  # the first half of the file, with a matching Content-Length
    CORRUPT = "corrupt"  # a JPEG signature followed by noise
    RESET = "reset"  # the connection is reset before any response
    RESET_ONCE = "reset-once"
    TINY = "tiny"  # a valid 8x8 JPEG


#: The faults of a benchmark's "10% failures" run: every one of them recoverable by a retry.
TRANSIENT_FAULTS = (Fault.SERVER_ERROR_ONCE, Fault.SLOW_ONCE, Fault.TRUNCATED_BODY_ONCE, Fault.RESET_ONCE)
_ONCE = {Fault.SERVER_ERROR_ONCE, Fault.RATE_LIMITED_ONCE, Fault.SLOW_ONCE, Fault.TRUNCATED_BODY_ONCE,
         Fault.RESET_ONCE}
_HTML = b"<!DOCTYPE html><html><head><title>Not here</title></head><body>Product not found</body></html>"


def _tiny_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


@dataclass
class ServerConfig:
    """What the server serves and how it misbehaves."""

    directory: str
    latency_seconds: float = 0.0
    fault_fraction: float = 0.0
    fraction_faults: Sequence[Fault] = TRANSIENT_FAULTS
    seed: int = 0
    slow_seconds: float = 5.0
    transient_count: int = 1
    retry_after_seconds: int = 1


@dataclass
class _Counters:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_path: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    times: dict = field(default_factory=lambda: defaultdict(list))

    def snapshot(self) -> dict:
        return {"requests": self.requests, "max_in_flight": self.max_in_flight,
                "by_path": dict(self.by_path), "by_status": {str(k): v for k, v in self.by_status.items()},
                "times": {k: list(v) for k, v in self.times.items()}}


class FaultyImageServer:
    """The aiohttp application; see the module docstring."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.root = Path(config.directory).resolve()
        self.counters = _Counters()
        self._tiny = _tiny_jpeg()
        self._cache: dict[str, bytes] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        app.router.add_get("/page.html", self._page)
        app.router.add_get("/img/{name:.+}", self._fraction)
        app.router.add_get("/f/{fault}/{name:.+}", self._rule)
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({**self.counters.snapshot(), "process_cpu_seconds": time.process_time()})

    async def _reset(self, request: web.Request) -> web.Response:
        self.counters = _Counters()
        return web.json_response({"reset": True})

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(body=_HTML, content_type="text/html")

    def fault_for(self, name: str) -> Fault | None:
        """The fault a ``/img/<name>`` request gets under the seeded fraction (None: served as is)."""
        if self.config.fault_fraction <= 0:
            return None
        digest = hashlib.sha256(f"{self.config.seed}:{name}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= self.config.fault_fraction:
            return None
        return self.config.fraction_faults[digest[8] % len(self.config.fraction_faults)]

    async def _fraction(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, request.match_info["name"], self.fault_for(request.match_info["name"]))

    async def _rule(self, request: web.Request) -> web.StreamResponse:
        try:
            fault = Fault(request.match_info["fault"])
        except ValueError:
            raise web.HTTPBadRequest(text=f"unknown fault {request.match_info['fault']!r}") from None
        return await self._serve(request, request.match_info["name"], fault)

    async def _serve(self, request: web.Request, name: str, fault: Fault | None) -> web.StreamResponse:
        counters = self.counters
        path = request.path_qs
        counters.requests += 1
        counters.by_path[path] += 1
        counters.times[path].append(time.time())
        counters.in_flight += 1
        counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        try:
            if self.config.latency_seconds:
                await asyncio.sleep(self.config.latency_seconds)
            if fault in _ONCE and counters.by_path[path] > self.config.transient_count:
                fault = None
            response = await self._respond(request, name, fault)
            counters.by_status[response.status if response is not None else "reset"] += 1
            return response
        finally:
            counters.in_flight -= 1

    def _file(self, name: str) -> bytes:
        data = self._cache.get(name)
        if data is None:
            path = (self.root / name).resolve()
            if self.root not in path.parents or not path.is_file():
                raise web.HTTPNotFound()
            # Kept in memory: benchmarks should measure the client, not this server's disk reads.
            data = self._cache[name] = path.read_bytes()
        return data

    async def _respond(self, request: web.Request, name: str, fault: Fault | None) -> web.StreamResponse:
        if fault in (Fault.NOT_FOUND, Fault.GONE, Fault.FORBIDDEN):
            return web.Response(status=int(fault.value), text="no")
        if fault in (Fault.SERVER_ERROR, Fault.SERVER_ERROR_ONCE):
            return web.Response(status=500, text="internal error")
        if fault is Fault.RATE_LIMITED_ONCE:
            return web.Response(status=429, text="slow down",
                                headers={"Retry-After": str(self.config.retry_after_seconds)})
        if fault in (Fault.SLOW, Fault.SLOW_ONCE):
            await asyncio.sleep(self.config.slow_seconds)
        if fault is Fault.HTML:
            return web.Response(body=_HTML, content_type="image/jpeg")
        if fault is Fault.HTML_PAGE:
            return web.Response(body=_HTML, content_type="text/html")
        if fault is Fault.REDIRECT_TO_HTML:
            raise web.HTTPFound("/page.html")
        if fault is Fault.TINY:
            return web.Response(body=self._tiny, content_type="image/jpeg")
        if fault in (Fault.RESET, Fault.RESET_ONCE):
            return self._reset_connection(request)
        data = self._file(name)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if fault is Fault.TRUNCATED_FILE:
            return web.Response(body=data[: len(data) // 2], content_type=content_type)
        if fault is Fault.CORRUPT:
            noise = hashlib.sha256(data).digest() * (len(data) // 32 + 1)
            return web.Response(body=data[:3] + noise[: len(data) - 3], content_type=content_type)
        if fault in (Fault.TRUNCATED_BODY, Fault.TRUNCATED_BODY_ONCE):
            return await self._truncated_body(request, data, content_type)
        return web.Response(body=data, content_type=content_type)

    @staticmethod
    def _reset_connection(request: web.Request) -> web.Response:
        sock = request.transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: close() sends RST instead of FIN, a real "connection reset by peer".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.transport.abort()
        raise asyncio.CancelledError  # nothing more to send; aiohttp drops the request quietly

    @staticmethod
    async def _truncated_body(request: web.Request, data: bytes, content_type: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        request.transport.close()
        raise asyncio.CancelledError


@dataclass(frozen=True)
class ServerHandle:
    """A running server."""

    base_url: str

    def url(self, name: str, fault: Fault | str | None = None) -> str:
        """URL of ``name``: plain (``/img/``, subject to the fraction) or with a fault rule."""
        if fault is None:
            return f"{self.base_url}/img/{name}"
        return f"{self.base_url}/f/{Fault(fault).value}/{name}"

    def stats(self) -> dict:
        """Request counters (see the module docstring)."""
        with urllib.request.urlopen(f"{self.base_url}/_stats", timeout=10) as resp:
            return json.load(resp)

    def requests_for(self, url: str) -> int:
        """How many requests reached the path of ``url``."""
        return self.stats()["by_path"].get(url[len(self.base_url):], 0)

    def reset(self) -> None:
        """Clear the counters."""
        req = urllib.request.Request(f"{self.base_url}/_reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()


async def _start(server: FaultyImageServer, port: int) -> web.AppRunner:
    # handler_cancellation: a client that gave up on a slow response frees its handler at once.
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, port, backlog=1024).start()
    return runner


@contextlib.contextmanager
def image_server(config: ServerConfig, port: int | None = None,
                 separate_process: bool = False) -> Iterator[ServerHandle]:
    """Run a :class:`FaultyImageServer` on 127.0.0.1 until the block exits.

    Args:
        config: Directory and faults.
        port: TCP port; a free one by default.
        separate_process: Run in a child Python process instead of a thread of this one.
    """
    port = port or free_port()
    handle = ServerHandle(f"http://{LOOPBACK}:{port}")
    if separate_process:
        cmd = [sys.executable, "-m", "ecom_kfp.testing.image_server", "--port", str(port),
               *_config_args(config)]
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_http(f"{handle.base_url}/_stats", timeout=60, process=process)
            yield handle
        finally:
            stop_process(process)
        return
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="image-server", daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(_start(FaultyImageServer(config), port), loop).result(30)
    try:
        yield handle
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _config_args(config: ServerConfig) -> list[str]:
    return ["--dir", config.directory, "--latency", str(config.latency_seconds),
            "--fault-fraction", str(config.fault_fraction),
            "--faults", ",".join(Fault(f).value for f in config.fraction_faults),
            "--seed", str(config.seed), "--slow-seconds", str(config.slow_seconds),
            "--transient-count", str(config.transient_count),
            "--retry-after", str(config.retry_after_seconds)]


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted (``python -m ecom_kfp.testing.image_server --dir DIR``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="directory of images to serve at /img/<name>")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every response")
    parser.add_argument("--fault-fraction", type=float, default=0.0, help="share of /img/ names with a fault")
    parser.add_argument("--faults", default=",".join(f.value for f in TRANSIENT_FAULTS),
                        help="comma-separated faults drawn for the fraction")
    parser.add_argument("--seed", type=int, default=0, help="seed choosing the faulty names")
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="delay of slow responses")
    parser.add_argument("--transient-count", type=int, default=1, help="requests a *-once fault hits")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds of 429s")
    args = parser.parse_args(argv)
    config = ServerConfig(args.dir, args.latency, args.fault_fraction,
                          tuple(Fault(f) for f in args.faults.split(",") if f), args.seed,
                          args.slow_seconds, args.transient_count, args.retry_after)
    port = args.port or free_port()
    print(f"serving {args.dir} at http://{LOOPBACK}:{port}/img/", flush=True)
    web.run_app(FaultyImageServer(config).app(), host=LOOPBACK, port=port, print=None,
                handler_cancellation=True, access_log=None)


if __name__ == "__main__":
    main()
