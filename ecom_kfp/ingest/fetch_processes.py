"""Image fetching spread over worker processes: ``fetch_in_processes``.

One event loop runs on one core, and checking images (decode, hash) costs about as much CPU as
downloading them, so a single process tops out well below what the network allows. Each worker
process here runs the same fetcher (:func:`ecom_kfp.ingest.fetch.fetch_all`) with its share of the
concurrency, per-host and thread limits, so outcomes are exactly those of one process.

The parent reads ``items`` lazily and feeds batches of sources into a bounded queue, so memory
does not grow with the catalog (a :data:`~ecom_kfp.ingest.fetch.WAIT` item pauses the feeding until
the next outcome arrives); workers send back each ``(source, outcome)`` and, when the queue
ends, their totals. The parent calls ``on_result`` on its own thread, and fails loudly when a worker
reports an error or exits without finishing (sources are never silently lost). Workers are
started with ``spawn`` (no inherited event loop, threads or locks) and are stopped on any exit of
the parent's loop, Ctrl-C included; they also stop by themselves if the parent disappears.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import queue
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.ingest.fetch import WAIT, FetchConfig, FetchOutcome, FetchStats, fetch_all, run_event_loop
from ecom_kfp.ingest.store import ImageStore

_RESULTS, _DONE, _ERROR = "results", "done", "error"
_BATCH = 8  # sources per queue message: fewer pickles and lock round trips than one at a time
_SEND_EVERY_SECONDS = 0.01  # outcomes finished within this long go back in one message
_POLL_SECONDS = 0.2
_LIVENESS_SECONDS = 1.0
_JOIN_SECONDS = 10.0
_COUNTERS = [item.name for item in dataclasses.fields(FetchStats) if item.name != "seconds"]  # the caller times


def _share(total: int, parts: int, index: int) -> int:
    """Part ``index`` of ``total`` split as evenly as possible into ``parts``."""
    return total // parts + (index < total % parts)


def _worker_config(config: FetchConfig, processes: int, index: int) -> FetchConfig:
    return dataclasses.replace(
        config, fetch_processes=1, concurrency=_share(config.concurrency, processes, index),
        per_host=_share(config.per_host, processes, index),
        io_threads=max(1, _share(config.io_threads, processes, index)),
        decode_pixel_budget=max(1, _share(config.decode_pixel_budget, processes, index)))


def _batches(items: Iterable[str]) -> Iterator[list[str] | str]:
    """Lists of up to ``_BATCH`` sources, and :data:`WAIT` where ``items`` has none to give yet."""
    batch: list[str] = []
    for item in items:
        if item is WAIT:
            if batch:
                yield batch
                batch = []
            yield WAIT
            continue
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _take(tasks: multiprocessing.Queue) -> list[str] | None:
    """The next batch for this worker, None at the end; gives up if the parent has gone."""
    while True:
        try:
            return tasks.get(timeout=_LIVENESS_SECONDS)
        except queue.Empty:
            if not multiprocessing.parent_process().is_alive():
                raise RuntimeError("the parent process is gone") from None


async def _serve(tasks: multiprocessing.Queue, results: multiprocessing.Queue, store: ImageStore,
                 config: FetchConfig, stats: FetchStats) -> None:
    loop = asyncio.get_running_loop()
    # Small local buffer: sources wait in the shared queue, where any idle worker can take them.
    local: asyncio.Queue[str | None] = asyncio.Queue(maxsize=_BATCH)

    async def read_tasks() -> None:
        with ThreadPoolExecutor(1, thread_name_prefix="ingest-tasks") as reader:
            while (batch := await loop.run_in_executor(reader, _take, tasks)) is not None:
                for source in batch:
                    await local.put(source)
        for _ in range(config.concurrency):
            await local.put(None)

    finished: list[tuple[str, FetchOutcome]] = []

    def send() -> None:
        if finished:
            results.put((_RESULTS, finished.copy()))
            finished.clear()

    def collect(source: str, outcome: FetchOutcome) -> None:
        if not finished:
            loop.call_later(_SEND_EVERY_SECONDS, send)
        finished.append((source, outcome))

    async with asyncio.TaskGroup() as group:
        group.create_task(read_tasks())
        group.create_task(fetch_all(local.get, store, config, collect, stats))
    send()


def _worker_main(layout: IngestLayout, config: FetchConfig, tasks: multiprocessing.Queue,
                 results: multiprocessing.Queue) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    stats = FetchStats()
    try:
        run_event_loop(_serve(tasks, results, ImageStore(layout), config, stats))
    except BaseException:
        results.put((_ERROR, multiprocessing.current_process().name, traceback.format_exc()))
        raise
    results.put((_DONE, multiprocessing.current_process().name, stats))


def _add(total: FetchStats, part: FetchStats) -> None:
    for name in _COUNTERS:
        setattr(total, name, getattr(total, name) + getattr(part, name))


class _Pool:
    """The worker processes of one fetch, their queues, and the parent's bookkeeping."""

    def __init__(self, items: Iterable[str], store: ImageStore, config: FetchConfig, processes: int):
        context = multiprocessing.get_context("spawn")
        self.tasks = context.Queue(maxsize=2 * processes)
        self.results = context.Queue()
        self.workers = [
            context.Process(target=_worker_main, name=f"ingest-fetch-{i}", daemon=True,
                            args=(store.layout, _worker_config(config, processes, i), self.tasks, self.results))
            for i in range(processes)]
        self.batches = _batches(items)
        self.unsent: list[str] | None = None  # a batch taken from ``batches`` that did not fit yet
        self.ends_sent = 0
        self.fed = self.answered = 0
        self.totals = FetchStats()
        self.finished: set[str] = set()
        self.dead_since: dict[str, float] = {}

    def feed(self) -> None:
        """Queue sources, then one end marker per worker, as far as fits without blocking."""
        try:
            while (batch := self.unsent or next(self.batches, None)) is not None:
                if batch is WAIT:
                    return  # fed again after the next outcome arrives, or within _POLL_SECONDS
                self.unsent = batch
                self.tasks.put_nowait(batch)
                self.fed += len(batch)
                self.unsent = None
            while self.ends_sent < len(self.workers):
                self.tasks.put_nowait(None)
                self.ends_sent += 1
        except queue.Full:
            pass

    def receive(self, message: tuple, on_result: Callable[[str, FetchOutcome], None], stats: FetchStats) -> None:
        kind, *body = message
        if kind == _RESULTS:
            for source, outcome in body[0]:
                self.answered += 1
                stats.sources += 1
                stats.attempts += outcome.attempts
                stats.retries += max(0, outcome.attempts - 1)  # 0 attempts: refused by the source policy
                stats.count_finished(outcome)
                on_result(source, outcome)
        elif kind == _DONE:
            name, worker_stats = body
            self.finished.add(name)
            _add(self.totals, worker_stats)
        else:
            name, text = body
            raise RuntimeError(f"image fetch worker {name} failed:\n{text}")

    def check_alive(self, drained: bool) -> None:
        """Fail on a worker that exited without finishing.

        A worker's last messages are in the pipe before it exits, so they have been read once the
        queue was found empty (``drained``) after its exit was first seen, or soon after in any case.
        """
        now = time.monotonic()
        for worker in self.workers:
            if worker.exitcode is None or worker.name in self.finished:
                continue
            seen = self.dead_since.setdefault(worker.name, now)
            if (drained and seen < now) or now - seen > _LIVENESS_SECONDS:
                raise RuntimeError(f"image fetch worker {worker.name} (pid {worker.pid}) exited with code "
                                   f"{worker.exitcode} before finishing; {self.fed - self.answered} sources "
                                   "fed to the workers have no outcome")

    def run(self, on_result: Callable[[str, FetchOutcome], None], stats: FetchStats) -> None:
        for worker in self.workers:
            worker.start()
        last_check = time.monotonic()
        while len(self.finished) < len(self.workers):
            self.feed()
            try:
                message = self.results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                message = None
            if message is None or time.monotonic() - last_check > _POLL_SECONDS:
                self.check_alive(drained=message is None)
                last_check = time.monotonic()
            if message is not None:
                self.receive(message, on_result, stats)
        if not self.fed == self.answered == self.totals.sources:
            raise RuntimeError(f"image fetch lost outcomes: {self.fed} sources fed, {self.answered} answered, "
                               f"{self.totals.sources} counted by the workers")

    def stop(self, graceful: bool) -> None:
        """Wait for the workers to exit (``graceful``) or end them; kill what does not stop."""
        if not graceful:
            for worker in self.workers:
                if worker.is_alive():
                    worker.terminate()
        for worker in self.workers:
            if worker.pid is None:  # never started
                continue
            worker.join(_JOIN_SECONDS if graceful else 2.0)
            if worker.is_alive():
                worker.kill()
                worker.join()
        # Batches still buffered for workers that are gone must not block this process's exit.
        self.tasks.cancel_join_thread()
        self.tasks.close()
        self.results.close()


def fetch_in_processes(items: Iterable[str], store: ImageStore, config: FetchConfig, processes: int,
                       on_result: Callable[[str, FetchOutcome], None], stats: FetchStats) -> None:
    """Fetch ``items`` in ``processes`` worker processes, calling ``on_result`` on this thread.

    ``stats`` counts sources, successes, failures, attempts and retries as outcomes arrive (for a
    progress bar); at the end every field but ``seconds`` holds the workers' summed totals.

    Raises:
        RuntimeError: a worker failed or died, or an outcome went missing.
    """
    pool = _Pool(items, store, config, processes)
    graceful = False
    try:
        pool.run(on_result, stats)
        graceful = True
    finally:
        pool.stop(graceful)
    for name in _COUNTERS:
        setattr(stats, name, getattr(pool.totals, name))
