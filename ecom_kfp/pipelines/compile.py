"""Compile every component and pipeline to the YAML files the repository ships.

Layout under a root directory (the repository root for the checked-in files)::

    components/<name>/component.yaml   one compiled component (a single-task PipelineSpec)
    components/<name>/README.md        generated from that file (see readme.py)
    pipelines/<name>.yaml              one compiled pipeline (PipelineSpec + platform spec)

Compiling is deterministic (same source -> byte-identical files), which is what lets
:func:`drift` compare a fresh compile with the checked-in files.
"""

from __future__ import annotations

import filecmp
from dataclasses import dataclass
from pathlib import Path

from kfp import compiler

from ecom_kfp.pipelines import catalog
from ecom_kfp.scratch import scratch_dir


def component_yaml(root: Path, name: str) -> Path:
    """``<root>/components/<name>/component.yaml``."""
    return root / catalog.COMPONENTS_DIR / name / catalog.COMPONENT_FILE


def pipeline_yaml(root: Path, name: str) -> Path:
    """``<root>/pipelines/<name>.yaml``."""
    return root / catalog.PIPELINES_DIR / f"{name}.yaml"


def compile_all(root: Path) -> list[Path]:
    """Write every component, component README and pipeline under ``root``.

    Returns:
        The files written, relative to ``root``, sorted.
    """
    from ecom_kfp.pipelines.readme import component_readme

    written: list[Path] = []
    for name, component in catalog.components().items():
        target = component_yaml(root, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        compiler.Compiler().compile(component, str(target))
        readme = target.parent / catalog.README_FILE
        readme.write_text(component_readme(name, target))
        written += [target, readme]
    for name, pipeline in catalog.pipelines().items():
        target = pipeline_yaml(root, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        compiler.Compiler().compile(pipeline, str(target))
        written.append(target)
    return sorted(p.relative_to(root) for p in written)


def generated_files(root: Path) -> list[Path]:
    """Files under ``root`` that ``compile_all`` owns (generated or stale), relative to ``root``."""
    found = list((root / catalog.COMPONENTS_DIR).glob(f"*/{catalog.COMPONENT_FILE}"))
    found += (root / catalog.COMPONENTS_DIR).glob(f"*/{catalog.README_FILE}")
    found += (root / catalog.PIPELINES_DIR).glob("*.yaml")
    return sorted(p.relative_to(root) for p in found)


@dataclass(frozen=True)
class Drift:
    """One file where the checked-in tree and a fresh compile disagree."""

    path: Path
    problem: str  # "differs", "missing" (not checked in) or "stale" (no longer generated)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def drift(root: Path) -> list[Drift]:
    """Compare the generated files under ``root`` with a fresh compile into a temporary directory."""
    with scratch_dir("compile") as tmp:
        fresh_root = Path(tmp)
        fresh = set(compile_all(fresh_root))
        current = set(generated_files(root))
        problems = [Drift(p, "missing") for p in fresh - current]
        problems += [Drift(p, "stale") for p in current - fresh]
        problems += [Drift(p, "differs") for p in fresh & current
                     if not filecmp.cmp(fresh_root / p, root / p, shallow=False)]
    return sorted(problems, key=lambda d: str(d.path))
