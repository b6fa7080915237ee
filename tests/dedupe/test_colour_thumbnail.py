"""The pHash colour check on real myntra photos: other colours stay apart, copies match."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecom_kfp.dedupe import DedupeConfig
from ecom_kfp.dedupe.colour_thumbnail import THUMBNAIL_SIDE, max_level_difference, thumbnail_map, thumbnails_of
from ecom_kfp.dedupe.image_hashes import ImageHashes, ImageJob, hash_chunk
from ecom_kfp.dedupe.phash import hamming, hamming_words
from ecom_kfp.dedupe.separable import batch_layout
from tests.dedupe.helpers import dedupe, jpeg, project_batch

DEFAULTS = DedupeConfig("in", "out")
#: Myntra products photographed like each other in another colour: pHash (64 and 256 bit)
#: cannot tell them apart, only colour can.
OTHER_COLOUR = {"wallet": ("48148", "48147"),  # Fossil Women Red Wallet / Brown Wallet
                "shoes": ("47279", "47278"),  # Franco Leone Men Brown / Black Formal Shoes
                "tie": ("49734", "49733")}  # Park Avenue Men Purple Tie / Black Tie
COPIES = {"resize": lambda image: jpeg(image.resize((image.width * 3 // 4, image.height * 3 // 4),
                                                    Image.Resampling.BILINEAR), quality=85),
          "upscale": lambda image: jpeg(image.resize((image.width * 2, image.height * 2),
                                                     Image.Resampling.BICUBIC)),
          "reencode": lambda image: jpeg(image, quality=40)}


def groups(kept: dict, duplicates: list[dict]) -> set[frozenset[str]]:
    """Groups of two or more products, as sets of product ids."""
    members: dict[str, set[str]] = {}
    for product_id, row in kept.items():
        members.setdefault(row["group_id"], set()).add(product_id)
    for row in duplicates:
        members[row["group_id"]].add(row["product_id"])
    return {frozenset(m) for m in members.values() if len(m) > 1}


def hashes_of(paths: list[Path | str]) -> ImageHashes:
    return hash_chunk([ImageJob((str(p),), None) for p in paths])


def test_thumbnail_of_a_flat_picture_is_its_colour_at_any_size():
    rgb = (200, 90, 160)
    expected = Image.new("RGB", (1, 1), rgb).convert("YCbCr").getpixel((0, 0))  # Pillow's own conversion
    for height, width in ((7, 5), (80, 60), (1066, 800)):
        flat = np.empty((height, width, 3), dtype=np.uint8)
        flat[:] = np.array(rgb, dtype=np.uint8)
        thumbnail = project_batch(batch_layout([flat]), thumbnail_map, thumbnails_of)
        thumbnail = thumbnail.reshape(3, THUMBNAIL_SIDE, THUMBNAIL_SIDE).astype(int)
        assert [np.unique(channel).size for channel in thumbnail] == [1, 1, 1]
        assert np.abs(thumbnail[:, 0, 0] - expected).max() <= 1  # Pillow rounds in integer steps


def test_thumbnail_sees_a_recoloured_corner():
    images = np.full((2, 80, 60, 3), 128, dtype=np.uint8)
    # The top-left quarter of the width and height turns blue.
    images[1, :20, :15] = np.array([40, 40, 230])
    difference = int(max_level_difference(*project_batch(batch_layout(images), thumbnail_map, thumbnails_of)[:, None]).item())
    assert difference > 60


def test_copies_of_real_photos_stay_within_the_default_tolerance(myntra_dir, tmp_path):
    sources = sorted((myntra_dir / "images").glob("*.jpg"))[:60]
    for kind, make in COPIES.items():
        copies = []
        for path in sources:
            target = tmp_path / f"{kind}-{path.name}"
            target.write_bytes(make(Image.open(path)))
            copies.append(target)
        original, copy = hashes_of(sources), hashes_of(copies)
        difference = max_level_difference(original.thumbnail, copy.thumbnail)
        assert difference.max() <= DEFAULTS.near_colour_tolerance, kind
        assert difference.max() > 0, f"{kind} copies must differ for this test to mean anything"


@pytest.mark.parametrize("product", sorted(OTHER_COLOUR))
def test_same_shot_in_another_colour_passes_phash_but_not_the_colour_check(myntra_dir, product):
    left, right = OTHER_COLOUR[product]
    hashes = hashes_of([myntra_dir / "images" / f"{left}.jpg", myntra_dir / "images" / f"{right}.jpg"])
    assert hamming(hashes.phash[0], hashes.phash[1]) <= DEFAULTS.near_threshold
    assert hamming_words(hashes.phash256[:1], hashes.phash256[1:])[0] <= DEFAULTS.near_verify_bits
    assert max_level_difference(hashes.thumbnail[:1], hashes.thumbnail[1:])[0] > DEFAULTS.near_colour_tolerance


def test_stage_keeps_other_colours_apart_and_groups_copies(myntra_dir, make_layout, tmp_path):
    products = []
    for left, right in OTHER_COLOUR.values():
        for product_id in (left, right):
            products.append({"product_id": product_id, "title": product_id,
                             "image": (myntra_dir / "images" / f"{product_id}.jpg").read_bytes()})
    for (kind, make), (source, _) in zip(COPIES.items(), OTHER_COLOUR.values()):
        image = Image.open(io.BytesIO((myntra_dir / "images" / f"{source}.jpg").read_bytes()))
        products.append({"product_id": f"{kind}-{source}", "title": kind, "image": make(image)})
    src = make_layout(products)
    phash_only = {"sha256_rule": False, "grid_rule": False, "title_rule": False, "phash_title_rule": False,
                  "near_removes": True}
    copy_groups = {frozenset((f"{kind}-{source}", source)) for kind, (source, _) in zip(COPIES, OTHER_COLOUR.values())}
    assert groups(*dedupe(src, tmp_path / "default", **phash_only)[:2]) == copy_groups
    # The colour check alone is what keeps the other colours apart.
    unchecked = groups(*dedupe(src, tmp_path / "no-colour-check", near_colour_tolerance=255, **phash_only)[:2])
    assert all(any(set(pair) <= group for group in unchecked) for pair in OTHER_COLOUR.values())
