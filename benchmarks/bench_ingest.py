"""Benchmark: ingest image fetching vs the thread pool of ``requests.get`` a user would write.

Serves the myntra-dev images from the fault-injecting server (a separate process on 127.0.0.1)
with a fixed per-request latency that models a CDN round trip, and fetches the same URL list
(the images repeated with ``?v=i`` so every URL is distinct) with:

- ``ours_W``: :func:`ecom_kfp.ingest.download.fetch_images` with ``W`` images in flight (aiohttp on a
  uvloop event loop, every image decoded and checked, stored content-addressed), by default in
  one process (``--fetch-processes``; ``processes`` in the JSON; with worker processes its CPU
  figures include the workers');
- ``threads_W``: a ``ThreadPoolExecutor(W)`` calling ``requests.get`` through one Session per
  thread and writing each body to a file (no validation, no retries), the usual hand-written
  downloader (the text-to-image project's had 200 threads).

How many requests are in flight decides the rate at high latency (``W`` / latency at most) and
the CPU per image at low latency (a wide thread pool loses time to the GIL), so both sides run at
every width of ``--widths`` on the clean server, and ``ratio`` compares each side at its best
width; ``ratio_at_equal_width`` compares them width by width. The 10%-fault run (500, slow beyond
the timeout, truncated body, connection reset; ``ours`` must lose nothing) uses each side's best
clean width.

Each contender runs in its own process so peak memory (its ``VmHWM``; with worker processes, plus
workers x the largest worker's ``ru_maxrss``, a bound) is its own; its CPU per image (workers included)
and the server's (read from ``/_stats``) give ``cpu_ceiling_images_per_second``, the rate at which
client and server together would saturate every core of this machine. Also: ``ours`` at its
default width (64) at a quarter and at the full URL count (memory must not grow with catalog
size), and the whole stage (``run``) over the 5,249 products of ``styles.csv``. Prints one JSON
document.

    .venv/bin/python benchmarks/bench_ingest.py [--urls 4000] [--latencies-ms 30,100] [--widths 32,64,200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

COLUMN_MAP = ("product_id=id,title=productDisplayName,"
              "category_path=masterCategory>subCategory>articleType,image_url=image")


def _rss_mb() -> float:
    from _common import process_status_kb

    return process_status_kb("VmRSS") / 1024


def _peak_mb(workers: int = 0) -> float:
    """Peak RSS of this process (its own ``VmHWM``) plus ``workers`` times the largest ``ru_maxrss`` of its
    finished children: an upper bound, since a forked worker's ``ru_maxrss`` counts this process's peak."""
    from _common import process_status_kb

    own = process_status_kb("VmHWM")
    return (own + workers * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (fetch worker processes)."""
    return sum(usage.ru_utime + usage.ru_stime
               for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def _figures(count: int, ok: int, seconds: float, cpu: float, rss_before: float, workers: int = 0) -> dict:
    return {"images": count, "ok": ok, "lost": count - ok, "seconds": round(seconds, 3),
            "images_per_second": round(count / seconds, 1), "cpu_ms_per_image": round(cpu / count * 1000, 3),
            "rss_before_mb": round(rss_before, 1), "peak_rss_mb": round(_peak_mb(workers), 1)}


def worker_ours(urls: list[str], out: str, args: argparse.Namespace) -> dict:
    from ecom_kfp.contracts.layouts import IngestLayout
    from ecom_kfp.ingest.download import fetch_images
    from ecom_kfp.ingest.fetch import FetchConfig, FetchedImage
    from ecom_kfp.ingest.source_policy import SourcePolicy
    from ecom_kfp.ingest.store import ImageStore

    config = FetchConfig(concurrency=args.width, per_host=args.width, timeout_seconds=args.timeout,
                         max_retries=2, backoff_seconds=0.05, fetch_processes=args.fetch_processes,
                         policy=SourcePolicy(allow_private_networks=True))
    ok = []
    rss_before, cpu_before = _rss_mb(), _cpu_seconds()
    stats = fetch_images(urls, ImageStore(IngestLayout(out)), config,
                         lambda _s, outcome: ok.append(isinstance(outcome, FetchedImage)), total=len(urls))
    processes = config.process_count(len(urls))
    workers = processes if processes > 1 else 0
    return {**_figures(len(urls), sum(ok), stats.seconds, _cpu_seconds() - cpu_before, rss_before, workers),
            "retries": stats.retries, "processes": processes}


def worker_threads(urls: list[str], out: str, args: argparse.Namespace) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import requests

    local = threading.local()
    os.makedirs(out, exist_ok=True)

    def download(url: str) -> bool:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            response = session.get(url, timeout=args.timeout)
            response.raise_for_status()
        except requests.RequestException:
            return False
        name = hashlib.sha256(response.content).hexdigest()
        with open(os.path.join(out, name + ".jpg"), "wb") as fh:
            fh.write(response.content)
        return True

    rss_before, cpu_before = _rss_mb(), _cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(args.width) as pool:
        ok = sum(pool.map(download, urls))
    seconds = time.perf_counter() - start
    return _figures(len(urls), ok, seconds, _cpu_seconds() - cpu_before, rss_before)


def worker_stage(base_url: str, out: str, args: argparse.Namespace) -> dict:
    from _common import MYNTRA

    from ecom_kfp.ingest import IngestConfig, run
    from ecom_kfp.ingest.fetch import FetchConfig
    from ecom_kfp.ingest.source_policy import SourcePolicy

    fetch = FetchConfig(concurrency=args.width, per_host=args.width, timeout_seconds=args.timeout,
                        backoff_seconds=0.05, fetch_processes=args.fetch_processes,
                        policy=SourcePolicy(allow_private_networks=True))
    start = time.perf_counter()
    report = run(IngestConfig(catalog=str(MYNTRA / "styles.csv"), out=out, column_map=COLUMN_MAP,
                              images_base=f"{base_url}/img/", progress=False, fetch=fetch))
    seconds = time.perf_counter() - start
    processes = fetch.process_count(report.images.fetched)
    return {"input_records": report.input_records, "accepted": report.accepted, "rejected": report.rejected,
            "rejects_by_reason": report.rejects_by_reason, "retries": report.images.retries,
            "seconds": round(seconds, 3), "products_per_second": round(report.input_records / seconds, 1),
            "images_per_second": report.images_per_second, "processes": processes,
            "peak_rss_mb": round(_peak_mb(processes if processes > 1 else 0), 1)}


def _spawn(kind: str, extra: list[str], args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--timeout", str(args.timeout),
           "--fetch-processes", str(args.fetch_processes), *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=4000, help="distinct image URLs to fetch")
    parser.add_argument("--latencies-ms", default="30,100",
                        help="comma-separated server delays per request; each gets a clean and a 10%%-fault run")
    parser.add_argument("--widths", default="32,64,200",
                        help="comma-separated requests in flight, tried for both sides on the clean server")
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)  # a worker's requests in flight
    parser.add_argument("--fetch-processes", type=int, default=1,
                        help="our fetch worker processes (1, the default: none; 0: one per CPU)")
    parser.add_argument("--timeout", type=float, default=2.0, help="per-request timeout of both")
    parser.add_argument("--skip-stage", action="store_true", help="skip the whole-stage run")
    parser.add_argument("--worker", choices=("ours", "threads", "stage"), help=argparse.SUPPRESS)
    parser.add_argument("--urls-file", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if args.worker == "stage":
            result = worker_stage(args.base_url, args.out, args)
        else:
            urls = Path(args.urls_file).read_text().split()
            result = (worker_ours if args.worker == "ours" else worker_threads)(urls, args.out, args)
        print(json.dumps(result))
        return

    from _common import MYNTRA  # not at the top: fetch worker processes re-import this module

    from ecom_kfp.ingest.fetch import FetchConfig
    from ecom_kfp.testing.image_server import ServerConfig, image_server

    default_width = FetchConfig().concurrency
    names = sorted(p.name for p in (MYNTRA / "images").iterdir())
    widths = [int(w) for w in args.widths.split(",")]
    results: dict = {"urls": args.urls, "widths": widths, "timeout_seconds": args.timeout,
                     "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()[0], "latencies": []}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:

        def contest(label: str, server_config: ServerConfig, count: int, contenders: list[tuple[str, int]]) -> dict:
            out = {}
            with image_server(server_config, separate_process=True) as server:
                urls = [f"{server.url(names[i % len(names)])}?v={i}" for i in range(count)]
                urls_file = Path(tmp, f"{label}.urls")
                urls_file.write_text("\n".join(urls))
                for kind, width in contenders:
                    server.reset()  # re-arms the fail-once faults for each contender
                    name = f"{kind}_{width}"
                    extra = ["--urls-file", str(urls_file), "--out", str(Path(tmp, f"{label}-{name}")),
                             "--width", str(width)]
                    server_cpu = server.stats()["process_cpu_seconds"]
                    figures = _spawn(kind, extra, args)
                    figures["server_cpu_ms_per_image"] = round(
                        (server.stats()["process_cpu_seconds"] - server_cpu) / count * 1000, 3)
                    # Client and server share this machine's cores: at most this many images/s fit.
                    figures["cpu_ceiling_images_per_second"] = round(
                        os.cpu_count() * 1000 / (figures["cpu_ms_per_image"] + figures["server_cpu_ms_per_image"]), 1)
                    out[name] = figures
            return out

        def best(runs: dict, kind: str) -> tuple[int, float]:
            rates = {int(name.split("_")[1]): figures["images_per_second"]
                     for name, figures in runs.items() if name.startswith(kind + "_")}
            width = max(rates, key=rates.get)
            return width, rates[width]

        for latency_ms in (float(v) for v in args.latencies_ms.split(",")):
            clean = ServerConfig(str(MYNTRA / "images"), latency_seconds=latency_ms / 1000)
            faulty = ServerConfig(str(MYNTRA / "images"), latency_seconds=latency_ms / 1000, fault_fraction=0.10,
                                  slow_seconds=args.timeout + 1.0, seed=7)
            runs = contest(f"clean{latency_ms}", clean, args.urls,
                           [(kind, width) for width in widths for kind in ("ours", "threads")])
            (ours_width, ours_rate), (pool_width, pool_rate) = best(runs, "ours"), best(runs, "threads")
            faults = contest(f"faults{latency_ms}", faulty, args.urls, [("ours", ours_width), ("threads", pool_width)])
            results["latencies"].append({
                "latency_ms": latency_ms,
                "clean": {**runs, "best_widths": {"ours": ours_width, "threads": pool_width},
                          "ratio": round(ours_rate / pool_rate, 2),
                          "ratio_at_equal_width": {
                              width: round(runs[f"ours_{width}"]["images_per_second"]
                                           / runs[f"threads_{width}"]["images_per_second"], 2) for width in widths}},
                "faults_10pct": {**faults, "ratio": round(faults[f"ours_{ours_width}"]["images_per_second"]
                                                          / faults[f"threads_{pool_width}"]["images_per_second"], 2)},
            })
        first = float(args.latencies_ms.split(",")[0]) / 1000
        clean = ServerConfig(str(MYNTRA / "images"), latency_seconds=first)
        sizes = {count: contest(f"memory{count}", clean, count, [("ours", default_width)])[f"ours_{default_width}"]
                 for count in (max(1, args.urls // 4), args.urls)}
        results["memory_vs_size"] = {f"ours_{count}_urls": {"peak_rss_mb": figures["peak_rss_mb"]}
                                     for count, figures in sizes.items()}
        if not args.skip_stage:
            with image_server(clean, separate_process=True) as server:
                results["stage_myntra"] = _spawn("stage", ["--base-url", server.base_url, "--width",
                                                           str(default_width), "--out", str(Path(tmp, "stage"))], args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
