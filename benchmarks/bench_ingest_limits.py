"""What ingest's limits cost and save on hostile feeds (issue 19): dead hosts and pixel-heavy images.

- ``dead_hosts``: ``fetch_images`` over sources on dead hosts (a refused 127.0.0.1 port and
  unresolvable ``*.invalid`` names, looked up on a DNS server on loopback through
  ``--dns-servers`` so that no query leaves the machine), with the per-host circuit breaker
  (default ``--host-failure-limit``) vs without it (a limit no feed reaches). Figures: attempts,
  DNS queries, seconds.
- ``decode_memory``: peak RSS growth of a fresh process fetching the same large PNGs (small files,
  many pixels) from local files on ``--io-threads`` threads, with the default
  ``--decode-pixel-budget`` vs an unbounded one (all images at once).

Prints one JSON document: ours, the alternative, and the ratio of each.
Usage: ``python benchmarks/bench_ingest_limits.py [--dead N] [--images N] [--side PX] [--threads N]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import process_status_kb  # benchmarks/ is on sys.path as a script

from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.ingest.download import fetch_images
from ecom_kfp.ingest.fetch import FetchedImage
from ecom_kfp.ingest.source_policy import SourcePolicy
from ecom_kfp.ingest.store import ImageStore

NO_LIMIT = 1 << 40


def dead_hosts(count: int, host_failure_limit: int) -> dict:
    from ecom_kfp.testing.servers import dns_server, free_port

    port = free_port()
    sources = [f"http://127.0.0.1:{port}/{i}.jpg" for i in range(count // 2)]
    sources += [f"http://h{i % 5}.gone.invalid/{i}.jpg" for i in range(count - count // 2)]
    with dns_server({}) as dns, tempfile.TemporaryDirectory() as out:
        config = FetchConfig(host_failure_limit=host_failure_limit, dns_servers=dns.address,
                             policy=SourcePolicy(allow_private_networks=True))
        start = time.perf_counter()
        stats = fetch_images(sources, ImageStore(IngestLayout(out)), config)
        seconds = time.perf_counter() - start
    return {"sources": count, "failed": stats.failed, "attempts": stats.attempts, "dns_queries": len(dns.queries),
            "seconds": round(seconds, 3)}


def decode_worker(sources: list[str], threads: int, budget: int) -> dict:
    """Run in a fresh process: the peak RSS it adds while fetching ``sources``."""
    config = FetchConfig(io_threads=threads, concurrency=threads, decode_pixel_budget=budget,
                         policy=SourcePolicy(allow_local_files=True))
    baseline = process_status_kb("VmRSS")
    accepted = []
    with tempfile.TemporaryDirectory() as out:
        stats = fetch_images(sources, ImageStore(IngestLayout(out)), config,
                             lambda _source, outcome: accepted.append(isinstance(outcome, FetchedImage)))
    grown = process_status_kb("VmHWM") - baseline
    return {"images": len(sources), "accepted": sum(accepted), "peak_rss_growth_mb": round(grown / 1024, 1),
            "seconds": round(stats.seconds, 3)}


def decode_memory(sources: list[str], threads: int, budget: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(sources), "--threads", str(threads),
           "--budget", str(budget)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _pngs(directory: Path, count: int, side: int) -> list[str]:
    from PIL import Image

    paths = []
    for i in range(count):
        image = Image.new("RGB", (side, side), (i * 15 % 256, 90, 160))
        image.paste((255, i * 40 % 256, 0), (i * 60 % side, 0, i * 60 % side + 40, side))
        path = directory / f"{i}.png"
        image.save(path, format="PNG")
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dead", type=int, default=400, help="sources on dead hosts")
    parser.add_argument("--images", type=int, default=16, help="large PNGs decoded")
    parser.add_argument("--side", type=int, default=3000, help="side of each PNG in pixels")
    parser.add_argument("--threads", type=int, default=FetchConfig().io_threads, help="decode threads")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(decode_worker(json.loads(args.worker), args.threads, args.budget)))
        return

    ours = dead_hosts(args.dead, FetchConfig().host_failure_limit)
    without = dead_hosts(args.dead, NO_LIMIT)
    with tempfile.TemporaryDirectory() as tmp:
        sources = _pngs(Path(tmp), args.images, args.side)
        budgeted = decode_memory(sources, args.threads, FetchConfig().decode_pixel_budget)
        unbounded = decode_memory(sources, args.threads, NO_LIMIT)
    rss = "peak_rss_growth_mb"
    print(json.dumps({
        "dead_hosts": {"ours": ours, "no_breaker": without,
                       "seconds_ratio": round(without["seconds"] / max(ours["seconds"], 1e-9), 1),
                       "attempts_ratio": round(without["attempts"] / max(ours["attempts"], 1), 1)},
        "decode_memory": {"ours": budgeted, "unbounded": unbounded, "side": args.side,
                          "rss_ratio": round(unbounded[rss] / max(budgeted[rss], 1), 1)},
    }, indent=2))


if __name__ == "__main__":
    main()
