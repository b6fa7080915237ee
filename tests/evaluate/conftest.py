"""A real tiny dataset and real SavedModels with the serving signature (ecom_kfp.testing.tiny_classifier)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout
from ecom_kfp.testing import tiny_classifier as tiny


@pytest.fixture(scope="session")
def test_records() -> list[tiny.Record]:
    """60 test products (15 per leaf category)."""
    return tiny.make_records(15, seed=1)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, test_records) -> DatasetLayout:
    return tiny.write_dataset(str(tmp_path_factory.mktemp("data") / "dataset"), test_records)


@pytest.fixture(scope="session")
def good_model(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: DatasetLayout) -> ModelLayout:
    """Image + title model: right on most products."""
    return tiny.export_model(str(tmp_path_factory.mktemp("good") / "model"), tiny.make_records(20, seed=2),
                             tiny_dataset, use_title=True)


@pytest.fixture(scope="session")
def weak_model(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: DatasetLayout) -> ModelLayout:
    """Image-only model: cannot tell classes of the same colour apart at level 2."""
    return tiny.export_model(str(tmp_path_factory.mktemp("weak") / "model"), tiny.make_records(20, seed=2),
                             tiny_dataset, use_title=False)


@pytest.fixture()
def out_dir(tmp_path: Path) -> str:
    return str(tmp_path / "evaluation")
