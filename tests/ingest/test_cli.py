"""``ecom-kfp ingest`` through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ecom_kfp.testing.image_server import Fault, ServerHandle

from .conftest import TRUSTED_FLAGS

ECOM_KFP = str(Path(sys.executable).parent / "ecom-kfp")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ECOM_KFP, "ingest", *args], capture_output=True, text=True, timeout=300)


def test_help_documents_every_flag() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for flag in ("--catalog", "--out", "--format", "--column-map", "--images-base", "--business-value",
                 "--shard-index", "--num-shards", "--concurrency", "--timeout", "--max-retries",
                 "--merge-shards", *TRUSTED_FLAGS, "--allow-gcs-buckets", "--host-failure-limit",
                 "--decode-pixel-budget"):
        assert flag in result.stdout
    assert "masterCategory>subCategory>articleType" in result.stdout.replace("\n", "").replace(" ", "")


def test_run_prints_a_summary_and_writes_the_report(server: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text(
        "sku,name,dept,kind,picture\n"
        "1,Red cotton shirt,Apparel,Shirts,a.jpg\n"
        "2,Blue denim jeans,Apparel,Jeans,b.jpg\n"
        f"3,Green wool scarf,Accessories,Scarves,{server.url('c.jpg', Fault.NOT_FOUND)}\n")
    result = cli("--catalog", str(tmp_path / "catalog.csv"), "--out", str(tmp_path / "out"),
                 "--column-map", "product_id=sku,title=name,category_path=dept>kind,image_url=picture",
                 "--images-base", f"{server.base_url}/img/", "--timeout", "5", "--no-progress", *TRUSTED_FLAGS)
    assert result.returncode == 0, result.stderr
    assert "3 records -> 2 accepted, 1 rejected" in result.stdout
    assert "not_found" in result.stdout and "images/s" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["accepted"], report["rejects_by_reason"]) == (2, {"not_found": 1})


def test_bad_flags_exit_2_with_the_flag_named(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("id,title\n1,x y z\n")
    result = cli("--catalog", str(tmp_path / "c.csv"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "--column-map" in result.stderr
    result = cli("--catalog", str(tmp_path / "c.csv"), "--out", str(tmp_path / "out"), "--num-shards", "0")
    assert result.returncode == 2 and "--num-shards" in result.stderr
    result = cli("--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "--catalog is required" in result.stderr
