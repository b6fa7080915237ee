"""A run killed mid-ingest resumes without downloading again what it stored (issue 19, item 11).

A real ``ecom-kfp ingest`` subprocess is killed with SIGKILL while fetching from the loopback
image server; the rerun's requests are counted on that server, and the rerun deletes the scratch
directory the killed run left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ecom_kfp.ingest.store import FetchJournal
from ecom_kfp.testing.image_server import ServerConfig, image_server
from tests.ingest.helpers import TRUSTED_FLAGS, jpeg_bytes, read_outputs

COUNT = 60


def _journaled(out: Path) -> list[str]:
    journal = out / FetchJournal.DIRECTORY
    parts = sorted(journal.glob("*.jsonl")) if journal.is_dir() else []
    lines = [line for part in parts for line in part.read_text().splitlines()]
    sources = []
    for line in lines:
        try:
            sources.append(json.loads(line)["source"])
        except ValueError:  # a line the kill cut
            pass
    return sources


def test_a_killed_run_is_resumed_from_the_stored_images(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(COUNT):
        (images / f"{i}.jpg").write_bytes(jpeg_bytes(color=(i * 4, 255 - i * 4, 90)))
    rows = [{"product_id": str(i), "title": f"Cotton shirt model {i}", "category_path": "Apparel > Shirts",
             "image_url": f"{i}.jpg"} for i in range(COUNT)]
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    scratch_root = tmp_path / "tmp"  # the runs' TMPDIR, to see their scratch directories
    scratch_root.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch_root)}
    with image_server(ServerConfig(str(images), latency_seconds=0.1)) as server:
        cmd = [sys.executable, "-m", "ecom_kfp.cli", "ingest", "--catalog", str(catalog), "--out", str(out),
               "--images-base", f"{server.base_url}/img/", "--concurrency", "2", "--no-progress", *TRUSTED_FLAGS]
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                                   env=env)
        deadline = time.monotonic() + 60
        while len(_journaled(out)) < 10 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        assert process.returncode == -signal.SIGKILL, process.stderr.read()
        assert not (out / "products.parquet").exists()  # killed before the end
        done = set(_journaled(out))
        assert 10 <= len(done) < COUNT
        left = [p.name for p in scratch_root.iterdir()]
        assert len(left) == 1 and left[0].startswith("ecom-kfp-ingest-"), left

        server.reset()
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        assert rerun.returncode == 0, rerun.stderr
        requested = server.stats()["by_path"]
    assert sum(requested.get(f"/img/{Path(s).name}", 0) for s in done) == 0  # nothing stored is downloaded again
    assert sum(requested.values()) == COUNT - len(done)
    assert list(scratch_root.iterdir()) == []  # the killed run's scratch went with the rerun's own
    report = json.loads((out / "report.json").read_text())
    assert (report["accepted"], report["images"]["reused"]) == (COUNT, len(done))
    products, rejects = read_outputs(out)
    assert len(products) == COUNT and rejects == []
    assert not (out / FetchJournal.DIRECTORY).exists()  # the products table holds the map now


def test_the_journal_on_gcs_is_written_in_batches_and_cleared(gcs_bucket: str) -> None:
    from ecom_kfp.contracts.layouts import IngestLayout

    layout = IngestLayout(f"{gcs_bucket}/out")
    journal = FetchJournal(layout)
    count = FetchJournal.GCS_BATCH + 10
    for i in range(count):
        journal.record(f"http://shop.example/{i}.jpg", f"{i:064x}", 60, 80)
    assert len(list(FetchJournal(layout).entries())) == FetchJournal.GCS_BATCH  # a full batch is already out
    journal.close()
    entries = list(FetchJournal(layout).entries())
    assert len(entries) == count and entries[0] == {"source": "http://shop.example/0.jpg", "sha256": f"{0:064x}",
                                                    "width": 60, "height": 80}
    FetchJournal(layout).clear()
    assert list(FetchJournal(layout).entries()) == []


def test_a_rerun_under_a_stricter_policy_does_not_reuse_what_it_refuses(image_dir: Path, tmp_path: Path) -> None:
    """Images an earlier run read from local files are not accepted again once local files are refused."""
    from ecom_kfp.ingest import IngestConfig, run
    from ecom_kfp.ingest.config import FetchConfig
    from tests.ingest.helpers import TRUSTED

    rows = [{"product_id": name, "title": f"Cotton shirt model {name}", "category_path": "Apparel",
             "image_url": str(image_dir / f"{name}.jpg")} for name in "abc"]
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = str(tmp_path / "out")
    trusted = run(IngestConfig(catalog=str(catalog), out=out, progress=False, fetch=FetchConfig(policy=TRUSTED)))
    assert trusted.accepted == 3
    strict = run(IngestConfig(catalog=str(catalog), out=out, progress=False))
    assert (strict.accepted, strict.rejects_by_reason, strict.images.reused) == (0, {"local_source_refused": 3}, 0)
