"""The demo images served over real HTTP on loopback: the planted faults behave as on the web."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from ecom_kfp.demo import serve_directory
from tests.demo.helpers import Demo


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get_content_type(), err.read()


def _first_clean(demo: Demo) -> str:
    planted = set(demo.truth["expected_ingest_rejects"]) | set(demo.truth["near_duplicate_kinds"])
    return next(pid for pid, r in demo.records.items() if pid not in planted and r["image_url"])


def test_serves_clean_images_byte_for_byte(demo: Demo) -> None:
    pid = _first_clean(demo)
    with serve_directory(demo.report.images) as base:
        assert base.startswith("http://127.0.0.1:") and base.endswith("/")
        status, content_type, body = _get(base + demo.records[pid]["image_url"])
    assert (status, content_type) == (200, "image/jpeg")
    assert body == demo.image(pid).read_bytes()
    Image.open(io.BytesIO(body)).load()


def test_dead_links_answer_404(demo: Demo) -> None:
    with serve_directory(demo.report.images) as base:
        statuses = {_get(base + demo.records[pid]["image_url"])[0] for pid in demo.truth["dead_link"]}
    assert statuses == {404}


def test_broken_images_arrive_broken(demo: Demo) -> None:
    with serve_directory(demo.report.images) as base:
        for pid in demo.truth["html_image"]:
            status, content_type, body = _get(base + demo.records[pid]["image_url"])
            # Labelled as a JPEG by its name, but an HTML page: only decoding tells.
            assert (status, content_type) == (200, "image/jpeg")
            assert body.lstrip().lower().startswith(b"<!doctype html>")
        for pid in demo.truth["truncated_image"] + demo.truth["random_bytes_image"]:
            status, _, body = _get(base + demo.records[pid]["image_url"])
            assert status == 200
            with pytest.raises(OSError):
                Image.open(io.BytesIO(body)).load()


def test_concurrent_requests(demo: Demo) -> None:
    pids = [pid for pid, r in demo.records.items() if r["image_url"] and demo.image(pid).exists()][:64]
    with serve_directory(demo.report.images) as base, ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda pid: _get(base + demo.records[pid]["image_url"]), pids))
    assert [body for _, _, body in results] == [demo.image(pid).read_bytes() for pid in pids]


def test_stops_on_exit(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with serve_directory(tmp_path) as base:
        assert _get(base + "a.txt")[2] == b"x"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base + "a.txt", timeout=2)


def test_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="nope"):
        with serve_directory(tmp_path / "nope"):
            pass
