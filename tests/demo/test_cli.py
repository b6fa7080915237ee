"""``ecom-kfp demo-catalog`` from a shell: help, a small run with its summary, bad flags, --serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from ecom_kfp.cli import main

FLAGS = ("--out", "--products", "--seed", "--image-size", "--fault-rate", "--duplicate-rate", "--serve",
         "--port", "--no-progress")


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ecom_kfp.cli", "demo-catalog", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_help_documents_every_flag() -> None:
    process = _cli("--help")
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    for flag in FLAGS:
        assert flag in out


def test_small_run_prints_a_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo-catalog", "--out", str(out), "--products", "70", "--image-size", "32",
                 "--seed", "9", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    truth = json.loads((out / "truth.json").read_text())
    assert report["products"] == 70
    assert f"catalog.jsonl: 70 lines ({len(truth['malformed_lines'])} malformed)" in printed
    assert f"{report['images_written']} files" in printed
    assert "dead link" in printed and "exact duplicate groups" in printed
    assert f"--images-base {out / 'images'}" in printed
    assert len((out / "catalog.jsonl").read_text().splitlines()) == 70


def test_bad_flags_exit_2_naming_the_flag(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a gs:// --out logs to ./ecom-kfp-demo-catalog.log, not into the checkout
    assert main(["demo-catalog", "--out", str(tmp_path / "x"), "--products", "5"]) == 2
    assert "--products=5" in capsys.readouterr().err
    assert main(["demo-catalog", "--out", "gs://bucket/demo", "--serve"]) == 2
    assert "--serve needs a local --out" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _sigint_as_at_a_terminal() -> None:
    # A shell without job control starts background jobs (e.g. CI's `make test &`) with SIGINT
    # ignored, and children inherit that: Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_serve_until_interrupted(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) stops serving cleanly."""
    out = tmp_path / "demo"
    process = _cli("--out", str(out), "--products", "60", "--image-size", "32", "--no-progress", "--serve",
                   start_new_session=True, preexec_fn=_sigint_as_at_a_terminal)
    try:
        base = None
        for _ in range(100):  # bounded: the summary has ~25 lines before the URL
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("serving "):
                base = line.split(" at ")[1].split()[0]
                break
        assert base is not None, process.stderr.read()
        truth = json.loads((out / "truth.json").read_text())
        clean = next(p for p in sorted((out / "images").iterdir())
                     if p.stem not in truth["expected_ingest_rejects"])
        with urllib.request.urlopen(base + clean.name, timeout=10) as response:
            assert response.read() == clean.read_bytes()
        os.killpg(process.pid, signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "stopped serving" in stdout
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
