"""Peak memory of a call, for the tests that check a stage's memory does not grow with its input."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def traced_peak(call: Callable[[], T]) -> tuple[T, int]:
    """``call()`` and the peak of Python's (and numpy's) traced allocations during it, in bytes.

    Arrow's and other C libraries' own buffers are not traced.
    """
    gc.collect()
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak
