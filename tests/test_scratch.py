"""Scratch directories of killed runs are deleted by the next run, and only those.

The owners are real processes: one killed with SIGKILL inside its ``with scratch_dir(...)`` block,
one still running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ecom_kfp import scratch

_HOLD = ("import sys, time; from ecom_kfp.scratch import scratch_dir\n"
         "with scratch_dir(sys.argv[1]) as path:\n"
         "    print(path, flush=True); time.sleep(120)\n")


def _holder(tmp: Path, kind: str) -> tuple[subprocess.Popen, Path]:
    """A process that made a scratch directory under ``tmp`` and is inside its block."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD, kind], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(tmp)})
    line = process.stdout.readline().strip()
    assert line, "the holder printed no scratch path"
    return process, Path(line)


def test_a_killed_owners_scratch_is_deleted_and_a_live_owners_kept(tmp_path: Path) -> None:
    killed, killed_dir = _holder(tmp_path, "ingest")
    live, live_dir = _holder(tmp_path, "verified")
    try:
        (killed_dir / "scratch.db").write_bytes(b"x" * 1000)
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
        assert killed_dir.is_dir()  # SIGKILL skips the block's cleanup

        assert scratch.sweep_stale(str(tmp_path)) == [str(killed_dir)]
        assert not killed_dir.exists()
        assert live_dir.is_dir()
    finally:
        live.kill()
        live.wait(30)


def test_only_this_packages_directories_of_this_machine_are_judged(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    machine = scratch._machine()
    other_machine = "0" * 8 if machine != "0" * 8 else "1" * 8
    kept = [f"ecom-kfp-ingest-{other_machine}-p{pid}-abc",  # another host, boot or PID namespace
            f"other-tool-ingest-{machine}-p{pid}-abc",  # not ours
            f"ecom-kfp-ingest-{machine}-p{os.getpid()}-abc"]  # this live process
    for name in kept:
        (tmp_path / name).mkdir()
    (tmp_path / f"ecom-kfp-plan-{machine}-p{pid}-file").write_text("a file, not a scratch directory")
    stale = tmp_path / f"ecom-kfp-predict-model-{machine}-p{pid}-xyz"
    stale.mkdir()

    assert scratch.sweep_stale(str(tmp_path)) == [str(stale)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted(kept)


def test_scratch_dir_is_named_after_its_owner_and_deleted_after_the_block(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with scratch.scratch_dir("mlflow-model") as path:
        name = Path(path).name
        assert Path(path).parent == tmp_path
        assert name.startswith(f"ecom-kfp-mlflow-model-{scratch._machine()}-p{os.getpid()}-")
        assert scratch.sweep_stale(str(tmp_path)) == []  # its owner is alive
    assert not Path(path).exists()


@pytest.mark.parametrize("kind", ["", "Ingest", "a/b", "-x", "x-"])
def test_a_kind_that_would_not_be_recognised_later_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="scratch kind"):
        scratch.scratch_dir(kind)
