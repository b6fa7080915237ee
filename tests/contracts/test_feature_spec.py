"""FeatureSpec read back from a manifest: what the build wrote comes back equal, and a manifest
from a shared artifact store with the wrong types is refused by name."""

from __future__ import annotations

import json

import pytest

from ecom_kfp.contracts.features import FeatureSpec


def test_a_spec_survives_the_manifest_round_trip() -> None:
    spec = FeatureSpec(num_levels=3, title_vector_dim=8, image_size=64, resize_mode="crop",
                       title_attributes=("usage", "base Colour"))
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_unknown_keys_from_newer_writers_are_ignored() -> None:
    spec = FeatureSpec.from_dict({"num_levels": 2, "title_vector_dim": 4, "written_by": "a newer build"})
    assert spec == FeatureSpec(num_levels=2, title_vector_dim=4)


@pytest.mark.parametrize("field, value, message", [
    # A string would otherwise be read letter by letter as column names: "u", "s", "a", ...
    ("title_attributes", "usage", "list of column names"),
    ("title_attributes", {"usage": 1}, "list of column names"),
    ("title_attributes", ["usage", 7], "tuple of column names"),
    ("title_attributes", ["usage", " "], "tuple of column names"),
    ("title_attributes", ["usage", "usage"], "names a column twice"),
    ("num_levels", "3", "num_levels must be an integer"),
    ("image_size", 224.5, "image_size must be an integer"),
    ("title_vector_dim", True, "title_vector_dim must be an integer"),
    ("resize_mode", "stretch", "resize_mode must be one of"),
])
def test_a_manifest_with_wrong_types_is_refused(field: str, value: object, message: str) -> None:
    manifest = {**FeatureSpec(num_levels=3, title_vector_dim=4).to_dict(), field: value}
    with pytest.raises(ValueError, match=message):
        FeatureSpec.from_dict(manifest)
