"""Smoke test of benchmarks/bench_ingest_limits.py at a tiny size: 40 dead sources, whose names a DNS
server on loopback answers, and two small PNGs decoded with and without the pixel budget."""

from __future__ import annotations

from tests.benchmarks import run_benchmark


def test_ingest_limits_benchmark_compares_each_limit_with_none() -> None:
    result = run_benchmark("bench_ingest_limits", "--dead", "40", "--images", "2", "--side", "300", "--threads", "2")
    dead = result["dead_hosts"]
    for side in ("ours", "no_breaker"):
        assert dead[side]["sources"] == dead[side]["failed"] == 40
        assert dead[side]["dns_queries"] >= 1  # the *.invalid names were asked of the loopback server
    # Without a breaker: the 20 refused sources are tried 3 times each, the 20 names once each.
    assert dead["no_breaker"]["attempts"] == 20 * 3 + 20
    assert dead["ours"]["attempts"] < dead["no_breaker"]["attempts"]
    memory = result["decode_memory"]
    assert memory["ours"]["accepted"] == memory["unbounded"]["accepted"] == 2
