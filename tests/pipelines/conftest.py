"""Fixtures for the pipeline tests: a fresh compile of everything into a temporary root."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_kfp.pipelines.compile import compile_all


@pytest.fixture(scope="session")
def compiled_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with every component, README and pipeline freshly compiled (read-only for tests)."""
    root = tmp_path_factory.mktemp("compiled")
    compile_all(root)
    return root
