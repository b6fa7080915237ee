"""CPU counting honours the container's quota (cgroup files written under tmp_path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ecom_kfp.resources import available_cpus, cgroup_cpu_quota


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(("files", "quota"), [
    ({"cpu.max": "200000 100000\n"}, 2.0),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu.max": "garbage"}, None),
    ({}, None),
])
def test_quota_from_cgroup_v2_and_v1_files(tmp_path: Path, files: dict[str, str], quota: float | None) -> None:
    for name, text in files.items():
        _write(tmp_path, name, text)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_available_cpus_is_capped_by_the_quota_rounded_up(tmp_path: Path) -> None:
    visible = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == visible  # no cgroup files: the affinity mask
    _write(tmp_path, "cpu.max", "50000 100000\n")
    assert available_cpus(tmp_path) == 1  # half a CPU still runs one worker
    _write(tmp_path, "cpu.max", f"{(visible + 8) * 100000} 100000\n")
    assert available_cpus(tmp_path) == visible  # a quota above the cpuset changes nothing
