"""``ecom-kfp compile``: deterministic output, drift detection, the checked-in files are current."""

from __future__ import annotations

import shutil
from pathlib import Path

from ecom_kfp.cli import main
from ecom_kfp.pipelines import catalog
from ecom_kfp.pipelines.compile import compile_all, drift, generated_files
from tests.pipelines.helpers import REPO


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p): (root / p).read_bytes() for p in generated_files(root)}


def test_compile_writes_every_component_readme_and_pipeline(compiled_root: Path) -> None:
    files = {str(p) for p in generated_files(compiled_root)}
    for name in catalog.components():
        assert f"components/{name}/component.yaml" in files
        assert f"components/{name}/README.md" in files
    for name in catalog.pipelines():
        assert f"pipelines/{name}.yaml" in files


def test_compile_is_byte_identical_twice(compiled_root: Path, tmp_path: Path) -> None:
    compile_all(tmp_path)
    assert _tree_bytes(tmp_path) == _tree_bytes(compiled_root)


def test_check_lists_every_drifted_file(compiled_root: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "repo"
    shutil.copytree(compiled_root, root)
    assert drift(root) == []
    assert main(["compile", "--check", "--root", str(root)]) == 0

    changed = root / "pipelines" / "training_pipeline.yaml"
    changed.write_text(changed.read_text().replace("epochs", "epochz", 1))
    (root / "components" / "train" / "README.md").unlink()
    stale = root / "components" / "old-stage" / "component.yaml"
    stale.parent.mkdir()
    stale.write_text("{}\n")

    found = {str(d.path): d.problem for d in drift(root)}
    assert found == {"pipelines/training_pipeline.yaml": "differs",
                     "components/train/README.md": "missing",
                     "components/old-stage/component.yaml": "stale"}
    assert main(["compile", "--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    for path in found:
        assert path in err
    assert (root / "components" / "old-stage" / "component.yaml").read_text() == "{}\n"


def test_checked_in_yaml_is_up_to_date() -> None:
    """What CI runs: the repository's components/ and pipelines/ match a fresh compile."""
    assert [str(d) for d in drift(REPO)] == []
