"""Fixtures shared by every test: the shared data set and real loopback servers.

Stage-specific fixtures live in ``tests/<stage>/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_TRACKING_URI", "")  # never talk to a server a developer left configured
os.environ.pop("MLFLOW_TRACKING_URI", None)

from ecom_kfp.contracts.layouts import DatasetLayout, ModelLayout  # noqa: E402
from ecom_kfp.testing import tiny_classifier as tiny  # noqa: E402
from ecom_kfp.testing.servers import GcsEmulator, MlflowServer, gcs_emulator, mlflow_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ECOM_KFP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def myntra_dir() -> Path:
    """``../shared/data/myntra-dev``: 5,249 real products with 60x80 JPEGs (CI has it beside the clone)."""
    path = SHARED_DATA / "myntra-dev"
    if not (path / "styles.csv").exists():
        pytest.fail(f"shared data missing: {path} (set ECOM_KFP_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def taxonomy_file() -> Path:
    """Google Product Taxonomy with ids (2021-09-21)."""
    path = SHARED_DATA / "google-product-taxonomy" / "taxonomy-with-ids.en-US.txt"
    if not path.exists():
        pytest.fail(f"shared data missing: {path}")
    return path


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """A real ``gcp-storage-emulator`` on loopback; ``STORAGE_EMULATOR_HOST`` points at it."""
    with gcs_emulator(tmp_path_factory.mktemp("gcs")) as emulator:
        yield emulator


@pytest.fixture()
def gcs_bucket(gcs: GcsEmulator, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test, ``gs://<name>``."""
    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    return gcs.create_bucket(name)


@pytest.fixture(scope="session")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` with a sqlite backend on loopback."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


# A real tiny dataset and real SavedModels with the serving signature, for evaluate and push.
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
def kfp_local(tmp_path: Path) -> Iterator[Path]:
    """kfp.local set up as ``run-local`` sets it up, for the test; yields the pipeline root."""
    from ecom_kfp.pipelines.kfp_local import local_runs

    with local_runs(tmp_path / "pipeline_root") as root:
        yield root


@pytest.fixture()
def out_dir(tmp_path: Path) -> str:
    return str(tmp_path / "evaluation")


#: Marks of the modules that run first (see pytest_collection_modifyitems).
SLOW_MARKS = ("e2e", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the slow modules first, in collection order otherwise.

    ``make test`` hands whole modules to its xdist workers in this order (``--dist loadscope
    --no-loadscope-reorder``): started last, a module of a few minute-long tests left one worker
    busy for minutes after the other had run out of work; started first, the many quick modules
    fill in behind them and the workers finish together.
    """
    items.sort(key=lambda item: not any(item.get_closest_marker(mark) for mark in SLOW_MARKS))
