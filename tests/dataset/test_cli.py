"""``ecom-kfp build-tfrecords`` from a shell: summary, report.json, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from ecom_kfp.cli import main
from tests.dataset.conftest import DedupeOutput


def test_cli_builds_and_prints_a_summary(dedupe_output: DedupeOutput, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["build-tfrecords", "--products", dedupe_output.layout.root, "--out", str(out), "--image-size", "24",
                 "--doc2vec-dim", "4", "--doc2vec-epochs", "2", "--min-class-count", "3", "--workers", "1",
                 "--split-fractions", "0.8,0.1,0.1", "--stratify", "--no-progress"])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert code == 0
    assert f"{report['records']} of {report['input_products']} products" in printed
    assert f"train {report['splits']['train']}" in printed and "golden test covers" in printed
    assert "rejected corrupt_image: 2" in printed and "lowered from 8000" in printed


def test_cli_reports_bad_input_and_flags(tmp_path: Path, capsys) -> None:
    assert main(["build-tfrecords", "--products", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "--products" in capsys.readouterr().err
    assert main(["build-tfrecords", "--products", "x", "--out", "o", "--split-fractions", "0.9,0.9,0.1"]) == 2
    assert "--split-fractions" in capsys.readouterr().err
