"""Local sources are read bounded (issue 19, item 2): only regular files, never more than the size cap.

Before, a FIFO hung the run forever and ``/dev/zero`` grew memory until the process was killed;
each test runs the real fetch in a subprocess with a deadline, so a regression fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_FETCH = textwrap.dedent("""
    import json, sys
    from ecom_kfp.contracts.layouts import IngestLayout
    from ecom_kfp.ingest.config import FetchConfig, ImageLimits
    from ecom_kfp.ingest.fetch import fetch_images
    from ecom_kfp.ingest.source_policy import SourcePolicy
    from ecom_kfp.ingest.store import ImageStore

    sources, out = json.loads(sys.argv[1]), sys.argv[2]
    config = FetchConfig(timeout_seconds=5, max_retries=0, limits=ImageLimits(max_bytes=1 << 20),
                         policy=SourcePolicy(allow_local_files=True))
    outcomes = {}
    fetch_images(sources, ImageStore(IngestLayout(out)), config, outcomes.__setitem__)
    print(json.dumps({s: getattr(o, "reason", "ok") for s, o in outcomes.items()}))
""")


def _fetch_in_subprocess(sources: list[str], out: Path) -> dict[str, str]:
    result = subprocess.run([sys.executable, "-c", _FETCH, json.dumps(sources), str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fifo_device_and_directory_are_refused_unread(tmp_path: Path, image_dir: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # no writer: opening it for reading would block forever
    sources = [str(fifo), "/dev/zero", str(tmp_path), str(image_dir / "a.jpg")]
    reasons = _fetch_in_subprocess(sources, tmp_path / "out")
    assert reasons == {str(fifo): "not_a_regular_file", "/dev/zero": "not_a_regular_file",
                       str(tmp_path): "not_a_regular_file", str(image_dir / "a.jpg"): "ok"}


def test_files_over_the_cap_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    with open(big, "wb") as fh:
        fh.truncate(64 << 30)  # sparse: 64 GiB that would not fit in memory
    reasons = _fetch_in_subprocess([str(big)], tmp_path / "out")
    assert reasons == {str(big): "too_large"}


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs /proc")
def test_proc_files_that_report_size_zero_are_bounded(tmp_path: Path) -> None:
    """``/proc`` files claim 0 bytes; the read still stops at the cap (here: a tiny text, not an image)."""
    reasons = _fetch_in_subprocess(["/proc/self/environ"], tmp_path / "out")
    assert reasons == {"/proc/self/environ": "not_an_image"}
