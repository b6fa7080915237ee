"""``ecom-kfp tfrecord-build`` from a shell: summary, report.json, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecom_kfp.cli import main
from ecom_kfp.tfrecord_build.config import DOC2VEC_INFER_EPOCHS
from tests.tfrecord_build.helpers import DedupeOutput


def test_cli_builds_and_prints_a_summary(dedupe_output: DedupeOutput, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["tfrecord-build", "--products", dedupe_output.layout.root, "--out", str(out), "--image-size", "24",
                 "--doc2vec-dim", "4", "--doc2vec-epochs", "2", "--doc2vec-infer-epochs", "4",
                 "--min-class-count", "3", "--workers", "1",
                 "--split-fractions", "0.8,0.1,0.1", "--stratify", "--no-progress"])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert code == 0
    assert f"{report['records']} of {report['input_products']} products" in printed
    assert f"train {report['splits']['train']}" in printed and "golden test covers" in printed
    assert "rejected corrupt_image: 2" in printed and "lowered from 8000" in printed
    assert (report["text"]["doc2vec_epochs"], report["text"]["doc2vec_infer_epochs"]) == (2, 4)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["text"]["doc2vec_infer_epochs"] == 4


def test_help_documents_the_doc2vec_epochs(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["tfrecord-build", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "--doc2vec-infer-epochs N Doc2Vec inference epochs per title vector" in printed
    assert f"(default: {DOC2VEC_INFER_EPOCHS})" in printed


def test_cli_reports_bad_input_and_flags(tmp_path: Path, capsys) -> None:
    assert main(["tfrecord-build", "--products", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "--products" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses the value itself, with exit status 2
        main(["tfrecord-build", "--products", "x", "--out", "o", "--split-fractions", "0.9,0.9,0.1"])
    assert exit_info.value.code == 2 and "the shares sum to 1.9, not 1" in capsys.readouterr().err
    assert main(["tfrecord-build", "--products", "x", "--out", "o", "--doc2vec-infer-epochs", "0"]) == 2
    assert "--doc2vec-infer-epochs" in capsys.readouterr().err
