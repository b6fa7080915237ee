"""``fetch_images``: fetch a shard's image sources in this process or in worker processes.

The one entry point of image fetching for the ingest stage. It sits above both
:mod:`ecom_kfp.ingest.fetch` (one event loop) and :mod:`ecom_kfp.ingest.fetch_processes` (several
processes, each running that loop), so neither of those imports the other's caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from tqdm import tqdm

from ecom_kfp.ingest.config import FetchConfig
from ecom_kfp.ingest.fetch import FetchOutcome, FetchStats, fetch_all, run_event_loop, sources_of
from ecom_kfp.ingest.fetch_processes import fetch_in_processes
from ecom_kfp.ingest.store import ImageStore


def fetch_images(items: Iterable[str], store: ImageStore, config: FetchConfig,
                 on_result: Callable[[str, FetchOutcome], None] | None = None,
                 progress: bool = False, total: int | None = None) -> FetchStats:
    """Fetch, check and store every source in ``items``; report each outcome through ``on_result``.

    Args:
        items: Image sources (``http(s)://`` URLs, ``gs://`` URIs, local paths), read lazily; each is
            fetched once per occurrence, so pass unique sources. A :data:`~ecom_kfp.ingest.fetch.WAIT`
            item means "none yet": the fetch asks again once outcomes have come back (a caller
            that holds the products of in-flight sources bounds its memory with it).
        store: Where accepted images go.
        config: Concurrency, processes, timeouts, retries and image limits.
        on_result: Called on the calling thread with ``(source, outcome)`` as each finishes.
        progress: Show a tqdm bar with the rate and failure count.
        total: Number of sources, for the progress bar (and so that a handful of sources does
            not start more processes than it has sources).

    Raises:
        RuntimeError: a worker process failed or died; its sources would otherwise be lost.

    Returns:
        Totals, with the wall-clock seconds of the whole call.
    """
    stats = FetchStats()
    start = time.perf_counter()
    with tqdm(total=total, desc="images", unit="img", disable=not progress, mininterval=0.5,
              dynamic_ncols=True) as bar:
        def record(source: str, outcome: FetchOutcome) -> None:
            if progress:
                bar.update(1)
                bar.set_postfix(ok=stats.succeeded, failed=stats.failed, retries=stats.retries, refresh=False)
            if on_result is not None:
                on_result(source, outcome)

        processes = config.process_count(total)
        if processes == 1:
            run_event_loop(fetch_all(sources_of(items), store, config, record, stats))
        else:
            fetch_in_processes(items, store, config, processes, record, stats)
    stats.seconds = time.perf_counter() - start
    return stats
