"""Decode memory follows the pixel budget, not the number of threads (issue 19, item 13).

Before, 16 PNGs of 131 KB each (6300x6300) took 5.0 GB across 16 decode threads. Here each run
is a fresh subprocess fetching the same large PNGs (small files, 2,500 x 2,500 pixels) from local
files with 8 I/O threads; its peak RSS (``VmHWM`` of /proc/self/status, measured by the process
itself) is compared with and without a budget of one image. Not ``ru_maxrss``: Linux carries the
parent's peak across fork and exec into it, and a pytest process that loaded TensorFlow is larger
than anything the child does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from PIL import Image

SIDE, COUNT = 2500, 8

_RUN = textwrap.dedent("""
    import json, sys
    from ecom_kfp.contracts.layouts import IngestLayout
    from ecom_kfp.ingest.config import FetchConfig, ImageLimits
    from ecom_kfp.ingest.download import fetch_images
    from ecom_kfp.ingest.fetch import FetchedImage
    from ecom_kfp.ingest.source_policy import SourcePolicy
    from ecom_kfp.ingest.store import ImageStore

    sources, out, budget = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    config = FetchConfig(io_threads=8, concurrency=8, decode_pixel_budget=budget,
                         policy=SourcePolicy(allow_local_files=True))
    def peak_kb():
        status = open("/proc/self/status").read()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))

    before = peak_kb()
    ok = []
    fetch_images(sources, ImageStore(IngestLayout(out)), config, lambda s, o: ok.append(isinstance(o, FetchedImage)))
    peak = peak_kb()
    print(json.dumps({"ok": sum(ok), "growth_mb": (peak - before) / 1024}))
""")


def _growth_mb(sources: list[str], out: Path, budget: int) -> float:
    result = subprocess.run([sys.executable, "-c", _RUN, json.dumps(sources), str(out), str(budget)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["ok"] == len(sources)
    return figures["growth_mb"]


def test_peak_memory_stays_at_one_image_whatever_the_threads(tmp_path: Path) -> None:
    sources = []
    for i in range(COUNT):  # distinct contents, so every one is decoded and stored
        image = Image.new("RGB", (SIDE, SIDE), (i * 20, 90, 160))
        image.paste((255, i * 30, 0), (i * 100, 0, i * 100 + 50, SIDE))
        path = tmp_path / f"big{i}.png"
        image.save(path, format="PNG")
        sources.append(str(path))
    one_image_mb = SIDE * SIDE * 4 / 2**20  # Pillow keeps RGB in 4 bytes per pixel
    budgeted = _growth_mb(sources, tmp_path / "budgeted", budget=SIDE * SIDE)
    unbounded = _growth_mb(sources, tmp_path / "unbounded", budget=COUNT * SIDE * SIDE)
    assert budgeted < 4 * one_image_mb, (budgeted, unbounded)
    assert unbounded > 2 * budgeted, (budgeted, unbounded)  # the measurement can tell them apart
