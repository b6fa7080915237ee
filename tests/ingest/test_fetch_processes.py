"""``fetch_images`` with worker processes, against the real fault-injecting server on loopback."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.ingest.fetch import FetchConfig, FetchedImage, FetchFailure, fetch_images
from ecom_kfp.ingest.reasons import Reason
from ecom_kfp.ingest.store import ImageStore
from ecom_kfp.testing.image_server import Fault, ServerHandle

from .conftest import TRUSTED

_FAULTS = [Fault.NOT_FOUND, Fault.SERVER_ERROR, Fault.SERVER_ERROR_ONCE, Fault.TRUNCATED_BODY_ONCE, Fault.SLOW_ONCE,
           Fault.HTML, Fault.CORRUPT, Fault.TINY, Fault.TRUNCATED_FILE]


def fetch(sources: list[str], out: Path, config: FetchConfig, processes: int, **kwargs):
    outcomes = {}
    config = dataclasses.replace(config, fetch_processes=processes)
    stats = fetch_images(sources, ImageStore(IngestLayout(str(out))), config, outcomes.__setitem__, **kwargs)
    # Accounting: one outcome per source, every source counted once, as success or failure.
    assert sorted(outcomes) == sorted(sources)
    assert stats.sources == len(sources) == stats.succeeded + stats.failed
    assert stats.failed == sum(isinstance(o, FetchFailure) for o in outcomes.values())
    return outcomes, stats


def _fetch_workers() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("ingest-fetch-")]


def _comparable(outcome: FetchedImage | FetchFailure):
    # The store root differs between the two runs, and which of two identical files wins is a race.
    if isinstance(outcome, FetchedImage):
        return dataclasses.replace(outcome, uri=Path(outcome.uri).name, newly_stored=None)
    return outcome


def test_two_processes_give_the_outcomes_of_one(server: ServerHandle, fast_fetch: FetchConfig, tmp_path: Path,
                                                image_dir: Path) -> None:
    sources = [server.url(f"{name}.jpg") + f"?v={i}" for i in range(4) for name in "abcde"]
    sources += [server.url("same.jpg"), server.url("alpha.png"), str(image_dir / "b.jpg"), str(image_dir / "nope.jpg")]
    sources += [server.url("c.jpg", fault) for fault in _FAULTS]
    one, one_stats = fetch(sources, tmp_path / "one", fast_fetch, processes=1)
    server.reset()  # re-arms the fail-once faults
    two, two_stats = fetch(sources, tmp_path / "two", fast_fetch, processes=2)

    assert {s: _comparable(o) for s, o in two.items()} == {s: _comparable(o) for s, o in one.items()}
    assert dataclasses.replace(two_stats, seconds=0) == dataclasses.replace(one_stats, seconds=0)
    assert two_stats.retries == 2 + 3  # SERVER_ERROR twice; the three fail-once faults once each
    assert two[server.url("c.jpg", Fault.SERVER_ERROR_ONCE)].attempts == 2
    assert two[server.url("c.jpg", Fault.SERVER_ERROR)].reason is Reason.HTTP_ERROR
    stored = sorted(p.name for p in (tmp_path / "two" / "images").rglob("*"))
    assert stored == sorted(p.name for p in (tmp_path / "one" / "images").rglob("*"))
    assert two_stats.images_stored == len([name for name in stored if name.endswith(".jpg")]) == 6
    assert not _fetch_workers()


def test_identical_content_is_stored_and_counted_once(server: ServerHandle, fast_fetch: FetchConfig,
                                                      tmp_path: Path) -> None:
    sources = [server.url(name) + f"?v={i}" for i in range(24) for name in ("a.jpg", "same.jpg")]
    outcomes, stats = fetch(sources, tmp_path, fast_fetch, processes=2)
    assert len({o.sha256 for o in outcomes.values()}) == 1
    assert sum(o.newly_stored for o in outcomes.values()) == 1 and stats.images_stored == 1
    assert [p.name for p in (tmp_path / "images").rglob("*") if p.is_file()] == [f"{outcomes[sources[0]].sha256}.jpg"]

    # A re-run finds everything stored: nothing new, same hashes.
    again, again_stats = fetch(sources, tmp_path, fast_fetch, processes=2)
    assert again_stats.images_stored == 0 and not any(o.newly_stored for o in again.values())
    assert {o.sha256 for o in again.values()} == {o.sha256 for o in outcomes.values()}


def test_two_stores_racing_on_one_file_count_one_write(tmp_path: Path) -> None:
    """What two worker processes do: separate stores, same hash, at the same moment."""
    stores = [ImageStore(IngestLayout(str(tmp_path))) for _ in range(8)]
    start = threading.Barrier(len(stores))
    won = []

    def put(store: ImageStore) -> None:
        start.wait()
        won.append(store.put("ab" + "0" * 62, b"same bytes"))

    threads = [threading.Thread(target=put, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]
    assert [p.name for p in (tmp_path / "images" / "ab").iterdir()] == ["ab" + "0" * 62 + ".jpg"]


def test_a_worker_error_is_raised_not_lost(server: ServerHandle, fast_fetch: FetchConfig, tmp_path: Path) -> None:
    (tmp_path / "images").write_text("a file where the store's directory should be")
    with pytest.raises(RuntimeError, match="NotADirectoryError"):
        fetch([server.url(f"{name}.jpg") for name in "abcd"], tmp_path, fast_fetch, processes=2)
    assert not _fetch_workers()


def test_a_killed_worker_is_reported_and_the_others_stopped(image_dir: Path, tmp_path: Path) -> None:
    from ecom_kfp.testing.image_server import ServerConfig, image_server

    killed = []

    def kill_one_worker(_source: str, _outcome) -> None:
        if not killed:
            killed.append(_fetch_workers()[0])
            os.kill(killed[0].pid, signal.SIGKILL)

    with image_server(ServerConfig(str(image_dir), latency_seconds=0.1)) as slow_server:
        urls = [slow_server.url("a.jpg") + f"?v={i}" for i in range(200)]
        config = FetchConfig(concurrency=4, per_host=4, fetch_processes=2, policy=TRUSTED)
        with pytest.raises(RuntimeError, match="exited with code -9 before finishing") as raised:
            fetch_images(urls, ImageStore(IngestLayout(str(tmp_path))), config, kill_one_worker)
        assert killed[0].name in str(raised.value)
        assert slow_server.stats()["requests"] < len(urls)  # the survivor was stopped, not run to the end
    assert not _fetch_workers()


def test_an_interrupt_in_the_caller_stops_the_workers(server: ServerHandle, fast_fetch: FetchConfig,
                                                      tmp_path: Path) -> None:
    def interrupt(_source: str, _outcome) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_images([server.url("a.jpg") + f"?v={i}" for i in range(50)], ImageStore(IngestLayout(str(tmp_path))),
                     dataclasses.replace(fast_fetch, fetch_processes=2), interrupt)
    assert not _fetch_workers()


def test_process_count_and_validation() -> None:
    assert FetchConfig().process_count() == 1  # one event loop, its threads on every core
    assert FetchConfig(fetch_processes=0).process_count() == min(len(os.sched_getaffinity(0)), 16)
    assert FetchConfig(fetch_processes=8, concurrency=64, per_host=3).process_count() == 3  # a per-host slot each
    assert FetchConfig(fetch_processes=8, concurrency=2).process_count() == 2
    assert FetchConfig(fetch_processes=4).process_count(total=1) == 1
    assert FetchConfig(fetch_processes=4).process_count(total=0) == 1
    with pytest.raises(ValueError, match="--fetch-processes"):
        FetchConfig(fetch_processes=-1)

