"""Smoke test of ``benchmarks/bench_dedupe_scale.py`` at a small size (the 10M-row run is not part of the suite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_dedupe_scale.py"


def test_scale_benchmark_finds_every_planted_copy_and_agrees_with_brute_force():
    done = subprocess.run([sys.executable, str(BENCH), "--rows", "20000", "--sample", "60"], capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    result = json.loads(done.stdout)
    recall = result["removal_recall"]
    assert recall["exact"]["removed_together"] == recall["near"]["removed_together"] == 1.0
    assert recall["conflict"]["removed_together"] == recall["generic"]["removed_together"] == 0.0
    assert all(kind["same_leak_group"] == 1.0 for kind in recall.values())
    assert result["removed"] == recall["exact"]["planted"] + recall["near"]["planted"]
    assert result["direct"]["match_kept_directly"] == result["removed"]
    assert result["label_conflicts"] == 2 * recall["conflict"]["planted"]
    brute = result["brute_force"]
    assert brute["removal_candidates"] > 0 and brute["removal_candidate_recall"] == 1.0
    assert brute["leak_partners"] > brute["removal_candidates"] and brute["leak_recall"] == 1.0
    assert result["peak_rss_mb"]["end"] > 0 and result["matching_and_grouping_seconds"] > 0
