"""The ``report.json`` every stage writes: counts, timings and throughput.

Benchmarks, the CLI summary and the KFP ``Output[Metrics]`` all read the same numbers from here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from ecom_kfp import uri


class AccountingError(AssertionError):
    """accepted + rejected != input: a stage lost or invented products."""


def check_accounting(stage: str, total: int, **parts: int) -> None:
    """Fail loudly unless the parts add up to ``total`` (nothing lost, nothing silently dropped).

    Args:
        stage: Stage name for the message.
        total: Products that entered the stage.
        **parts: Where they went, e.g. ``accepted=..., rejected=...``.
    """
    if sum(parts.values()) != total:
        detail = " + ".join(f"{k}={v}" for k, v in parts.items())
        raise AccountingError(f"{stage}: {detail} = {sum(parts.values())}, but {total} came in")


@dataclass
class Timings:
    """Wall-clock seconds per phase, filled by :meth:`phase`."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, mappings and sequences to plain JSON types."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def write_report(report: Any, out_uri: str) -> str:
    """Write ``report`` (a dataclass or mapping) as ``report.json`` under ``out_uri``."""
    target = uri.join(out_uri, "report.json")
    uri.write_text(target, json.dumps(to_jsonable(report), indent=2, sort_keys=True) + "\n")
    return target


def scalar_metrics(report: Any, prefix: str = "") -> dict[str, float]:
    """Flatten the numeric leaves of a report for ``Output[Metrics].log_metric``."""
    flat: dict[str, float] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, bool):
            flat[key] = float(value)
        elif isinstance(value, (int, float)):
            flat[key] = float(value)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))

    walk(to_jsonable(report), prefix)
    return flat
