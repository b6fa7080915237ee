"""Builders of small ingest-layout directories with real JPEG files, for the dedupe tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.dedupe.helpers import write_layout, write_myntra_layout


@pytest.fixture()
def make_layout(tmp_path: Path) -> Callable[[Sequence[dict]], Path]:
    """``make_layout(products)`` -> a fresh ingest layout directory under ``tmp_path``."""
    count = iter(range(1_000_000))

    def make(products: Sequence[dict]) -> Path:
        return write_layout(tmp_path / f"ingest-{next(count)}", products)

    return make


@pytest.fixture(scope="session")
def myntra_layout(myntra_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All of myntra-dev as an ingest layout (see :func:`write_myntra_layout`)."""
    return write_myntra_layout(myntra_dir, tmp_path_factory.mktemp("myntra-ingest"))
