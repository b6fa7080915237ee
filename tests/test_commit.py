"""One writer per output and staged publishing (:mod:`ecom_kfp.commit`), on both backends.

``gs://`` runs against the real ``gcp-storage-emulator``. The emulator ignores generation
preconditions, so it checks that a second writer is refused, not that two simultaneous creators
are told apart (GCS's ``if_generation_match=0`` does that; no real part for it runs here).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ecom_kfp import uri
from ecom_kfp.commit import LOCK_NAME, OutputLocked, output_lock, staged_commit

BACKENDS = ("local", "gcs")


@pytest.fixture(params=BACKENDS)
def out(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "out")
    return request.getfixturevalue("gcs_bucket") + "/out"


def test_a_second_writer_is_refused_naming_the_flag(out: str) -> None:
    with output_lock(out):
        with pytest.raises(OutputLocked, match=r"--out=.*another run is writing there.*pid"):
            with output_lock(out):
                pass
    with output_lock(out):  # released at the end of the block
        pass


def test_the_lock_is_released_on_errors(out: str) -> None:
    with pytest.raises(RuntimeError):
        with output_lock(out):
            raise RuntimeError("stage failed")
    with output_lock(out):
        pass


def test_a_killed_local_holder_does_not_block_the_next_run(tmp_path: Path) -> None:
    """flock dies with its process: a run killed with SIGKILL leaves no stale lock."""
    out = str(tmp_path / "out")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from ecom_kfp.commit import output_lock
        with output_lock({out!r}):
            print("locked", flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLocked, match=str(holder.pid)):
            with output_lock(out):
                pass
    finally:
        holder.kill()
        holder.wait(30)
    with output_lock(out):
        pass


def test_staged_files_are_published_together_with_the_report_last(out: str) -> None:
    uri.write_text(uri.join(out, "report.json"), "old report")
    uri.write_text(uri.join(out, "table.txt"), "old table")
    with staged_commit(out) as staging:
        uri.write_text(uri.join(staging, "table.txt"), "new table")
        uri.write_text(uri.join(staging, "sub", "part.txt"), "new part")
        uri.write_text(uri.join(staging, "report.json"), "new report")
        assert uri.read_text(uri.join(out, "report.json")) == "old report"  # nothing published yet
    assert uri.read_text(uri.join(out, "table.txt")) == "new table"
    assert uri.read_text(uri.join(out, "sub", "part.txt")) == "new part"
    assert uri.read_text(uri.join(out, "report.json")) == "new report"
    assert sorted(uri.relative_files(out)) == ["report.json", "sub/part.txt", "table.txt"]  # no staging left


def test_a_failed_stage_leaves_the_previous_output_as_it_was(out: str) -> None:
    uri.write_text(uri.join(out, "report.json"), "old report")
    uri.write_text(uri.join(out, "table.txt"), "old table")
    with pytest.raises(RuntimeError):
        with staged_commit(out) as staging:
            uri.write_text(uri.join(staging, "table.txt"), "half-written run")
            raise RuntimeError("stage failed")
    assert uri.read_text(uri.join(out, "table.txt")) == "old table"
    assert uri.read_text(uri.join(out, "report.json")) == "old report"
    assert sorted(uri.relative_files(out)) == ["report.json", "table.txt"]


def test_a_killed_runs_staging_is_deleted_by_the_next_holder_of_the_lock(out: str) -> None:
    """A run killed mid-stage (kill -9, an OOM-killed pod) leaves its staging behind; under the lock,
    nobody else writes there, so the next run deletes it and publishes only its own files."""
    uri.write_text(uri.join(out, ".staging", "products.parquet"), "half-written by a killed run")
    uri.write_text(uri.join(out, ".staging", "shard", "part.txt"), "half-written by a killed run")
    with output_lock(out), staged_commit(out) as staging:
        assert not uri.exists(uri.join(staging, "products.parquet"))
        uri.write_text(uri.join(staging, "report.json"), "{}")
    assert sorted(uri.relative_files(out)) in (["report.json"], [LOCK_NAME, "report.json"])


def test_the_local_lock_file_is_the_only_trace(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    with output_lock(out), staged_commit(out) as staging:
        uri.write_text(uri.join(staging, "report.json"), "{}")
    assert sorted(p.name for p in Path(out).iterdir()) == [LOCK_NAME, "report.json"]
