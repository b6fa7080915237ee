"""Dedupe outputs for the TFRecord build tests, written from real Myntra rows and images.

Products share a ``split_group`` when their titles are equal (as dedupe's title rule would group
them into a leak group), so splits can be checked for groups crossing them. Broken inputs are added on request:
a truncated JPEG, HTML saved as an image, a missing image file, a blank title and a product with
no category.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tfrecord_build.helpers import DedupeOutput, small_config, write_dedupe_output


@pytest.fixture(scope="session")
def dedupe_output(tmp_path_factory: pytest.TempPathFactory, myntra_dir: Path) -> DedupeOutput:
    """A shared, read-only dedupe output with broken products."""
    return write_dedupe_output(tmp_path_factory.mktemp("dedupe"), myntra_dir)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, dedupe_output: DedupeOutput):
    """One build of :func:`dedupe_output`, shared by the read-only tests: ``(output dir, report)``."""
    from ecom_kfp.tfrecord_build import run

    out = tmp_path_factory.mktemp("dataset") / "out"
    return out, run(small_config(dedupe_output.layout.root, str(out)))
