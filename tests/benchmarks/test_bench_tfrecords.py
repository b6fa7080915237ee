"""Smoke test of benchmarks/bench_tfrecords.py at a tiny size: 60 myntra-dev products and 4 generated
800x800 pictures through our writer, the TensorFlow loop, Pillow's limits and the whole stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks import run_benchmark

pytestmark = pytest.mark.slow


def test_tfrecord_benchmark_writes_every_record_each_way(tmp_path: Path, myntra_dir: Path) -> None:
    results = run_benchmark("bench_tfrecords", "--records", "60", "--large", "4",
                            env={"ECOM_KFP_SHARED_DATA": str(myntra_dir.parent), "TMPDIR": str(tmp_path)})["results"]
    assert [(r["records"], r["image_size"]) for r in results] == [(60, 224), (4, 224)]
    for result in results:
        rates = result["records_per_cpu_second"]
        assert set(rates) == {"ours", "tf_loop", "pillow_limit", "pillow_draft_limit"}
        assert result["cpu_ratios"]["ours_vs_tf_loop"] == pytest.approx(rates["ours"] / rates["tf_loop"], rel=0.01)
        assert all(stage["records"] == result["records"] for stage in result["stage"])
    assert 0.0 <= results[0]["title_vector_quality"]["reference_knn_category_agreement"] <= 1.0
