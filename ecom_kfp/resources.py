"""How many CPUs this process may really use: its affinity mask, capped by the container's CPU quota.

A Kubernetes CPU limit is a CFS quota, not a cpuset: a pod limited to 2 CPUs on a 64-core node
still sees 64 CPUs in ``os.cpu_count()`` and in its affinity mask. Stages that start one worker
process per CPU (ingest fetchers, dedupe hashers, TFRecord writers) would start 64 there, which
only thrashes the 2 CPUs and multiplies the pod's memory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs to size worker pools by: the affinity mask, capped by the cgroup quota rounded up."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(cgroup_root)
    return max(1, min(cpus, math.ceil(quota))) if quota is not None else cpus


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT) -> float | None:
    """The CPU limit in CPUs, from cgroup v2 ``cpu.max`` or v1 ``cpu/cpu.cfs_quota_us`` and
    ``cpu.cfs_period_us``; None when there is no limit or no readable cgroup file."""
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else _ratio(int(quota), int(period))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return _ratio(quota_us, period_us)


def _ratio(quota: int, period: int) -> float | None:
    # cgroup v1 writes -1 for "no limit".
    return quota / period if quota > 0 and period > 0 else None
