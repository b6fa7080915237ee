"""pHash, colour grid, multi-index search and union-find against reference implementations."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph
from PIL import Image

from ecom_kfp.dedupe import grid_hash, image_hashes
from ecom_kfp.dedupe.colour_thumbnail import max_level_difference
from ecom_kfp.dedupe.image_hashes import ImageJob, decode_rgb, hash_chunk
from ecom_kfp.dedupe.near_search import brute_force_neighbours, near_item_pairs, near_value_pairs
from ecom_kfp.dedupe.phash import hamming
from ecom_kfp.dedupe.separable import batch_layout
from ecom_kfp.dedupe.union_find import UnionFind
from tests.dedupe.helpers import jpeg, phash64, picture, project_batch


def test_phash_agrees_with_imagehash_on_real_images(myntra_dir: Path):
    files = sorted((myntra_dir / "images").glob("*.jpg"))[:200]
    ours = []
    for path in files:
        rgb, _, _ = decode_rgb(path.read_bytes())
        ours.append(phash64([rgb])[0])
    reference = np.array([int(str(imagehash.phash(Image.open(p))), 16) for p in files], dtype=np.uint64)
    distance = hamming(np.array(ours, dtype=np.uint64), reference)
    # Same algorithm; only float vs 8-bit rounding of the resize flips coefficients at the median.
    assert distance.mean() < 1.5 and np.percentile(distance, 95) <= 4


def test_phash_batch_equals_one_by_one():
    gray = [np.asarray(picture(seed).convert("L"))[..., None] for seed in range(8)]
    batch = phash64(gray)
    assert [int(h) for h in batch] == [int(phash64([g])[0]) for g in gray]
    assert len(set(batch.tolist())) == 8


def grid_digits(pixels: np.ndarray) -> np.ndarray:
    return project_batch(pixels, grid_hash.cell_mean_map, grid_hash.digits_of_means)


def rgb_batch(image: Image.Image) -> np.ndarray:
    """A batch of one image's RGB pixels in the layout the hashes take."""
    return batch_layout([np.asarray(image.convert("RGB"))])


def test_grid_key_depends_on_picture_and_size():
    image = picture(3)
    digits = grid_digits(rgb_batch(image))
    assert digits.shape == (1, 75) and digits.max() <= 9
    assert grid_hash.grid_key(digits[0], 96, 128) != grid_hash.grid_key(digits[0], 192, 256)
    other = grid_digits(rgb_batch(picture(4)))
    assert grid_hash.grid_key(digits[0], 96, 128) != grid_hash.grid_key(other[0], 96, 128)


def test_grid_digits_are_quantised_cell_means():
    left_red = np.zeros((50, 50, 3), dtype=np.uint8)
    left_red[:, :25] = (255, 0, 0)
    left_red[:, 25:] = (0, 0, 255)
    digits = grid_digits(rgb_batch(Image.fromarray(left_red)))
    cells = digits.reshape(5, 5, 3)
    assert (cells[:, 0] == (9, 0, 0)).all() and (cells[:, 4] == (0, 0, 9)).all()
    assert (cells[:, 2, 0] == 4).all() and (cells[:, 2, 2] == 4).all()  # the split cell averages both


def test_blank_pictures_have_no_detail():
    blank = batch_layout([np.full((40, 40, 3), 235, dtype=np.uint8)])
    busy = rgb_batch(picture(1))
    assert grid_hash.has_detail(grid_digits(blank)).tolist() == [False]
    assert grid_hash.has_detail(grid_digits(busy)).tolist() == [True]


@pytest.mark.parametrize("radius", [1, 3, 6, 9])
def test_near_value_pairs_equal_brute_force(radius):
    rng = np.random.default_rng(radius)
    base = rng.integers(0, 2**64 - 1, size=3000, dtype=np.uint64, endpoint=True)
    flips = np.array([sum(1 << int(b) for b in rng.choice(64, rng.integers(1, radius + 3), replace=False))
                      for _ in range(600)], dtype=np.uint64)
    values = np.unique(np.concatenate([base, base[:600] ^ flips]))
    pairs = near_value_pairs(values, radius)
    found = {(int(a), int(b)) for a, b in zip(pairs.left, pairs.right)}
    expected = {(i, int(j)) for i, hits in enumerate(brute_force_neighbours(values, values, radius))
                for j in hits if j > i}
    assert found == expected and len(expected) > 100
    assert (pairs.distance <= radius).all()


def test_near_item_pairs_include_equal_hashes_once():
    hashes = np.array([0x07, 0xF0, 0x07, 0xF1, 0x07, 0xFFFF_FFFF_0000_0000], dtype=np.uint64)
    pairs = near_item_pairs(hashes, 3)
    assert list(zip(pairs.left.tolist(), pairs.right.tolist(), pairs.distance.tolist())) == [
        (0, 2, 0), (0, 4, 0), (1, 3, 1), (2, 4, 0)]
    pairs = near_item_pairs(hashes, 6)
    assert list(zip(pairs.left.tolist(), pairs.right.tolist(), pairs.distance.tolist())) == [
        (0, 2, 0), (0, 3, 6), (0, 4, 0), (1, 3, 1), (2, 3, 6), (2, 4, 0), (3, 4, 6)]


def test_union_find_matches_connected_components():
    rng = np.random.default_rng(0)
    n = 20000
    left, right = rng.integers(0, n, 15000), rng.integers(0, n, 15000)
    sets = UnionFind(n)
    sets.union(left, right)
    roots = sets.roots()
    graph = scipy.sparse.coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    count, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    assert len(np.unique(roots)) == count
    # Same partition: each component maps to exactly one root and vice versa.
    assert len(set(zip(roots.tolist(), labels.tolist()))) == count
    assert (roots <= np.arange(n)).all()


def test_batches_of_mixed_sizes_hash_like_single_images(tmp_path: Path):
    """More images than a batch, two sizes interleaved and an unreadable file among them: each row
    gets its own image's hashes, and hashing in this process leaves no batch buffers behind."""
    paths = []
    for i in range(2 * image_hashes.BATCH + 6):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(b"<html>" if i == 5 else jpeg(picture(i, size=(96, 128) if i % 3 else (40, 50))))
        paths.append(path)
    jobs = [ImageJob((str(p),), None) for p in paths]
    together = image_hashes.hash_images(jobs, workers=1, chunk_size=len(jobs), progress=False)
    assert image_hashes._buffers.cache_info().currsize == 0
    assert together.reason[5] == image_hashes.REASON_UNREADABLE and together.ok.sum() == len(jobs) - 1
    for row, job in enumerate(jobs):
        alone = hash_chunk([job])
        for field in ("phash", "phash256", "grid", "colour", "thumbnail", "width", "height", "reason"):
            assert np.array_equal(getattr(together, field)[row], getattr(alone, field)[0]), (row, field)


def test_decode_uses_reduced_size_for_large_jpegs():
    rgb, width, height = decode_rgb(jpeg(picture(1, size=(800, 1000))))
    assert (width, height) == (800, 1000)
    assert rgb.shape[2] == 3 and 32 <= min(rgb.shape[:2]) < 800


def test_pillow_fallback_hashes_like_libjpeg_turbo(myntra_dir: Path, tmp_path: Path):
    """A PNG of a JPEG's decoded pixels (Pillow's path) hashes like the JPEG itself (libjpeg-turbo's)."""
    jpegs = sorted((myntra_dir / "images").glob("*.jpg"))[:40]
    pngs = []
    for path in jpegs:
        target = tmp_path / f"{path.stem}.png"
        Image.open(path).convert("RGB").save(target)
        pngs.append(target)
    turbo, pillow = (hash_chunk([ImageJob((str(p),), None) for p in paths]) for paths in (jpegs, pngs))
    assert turbo.ok.all() and pillow.ok.all()
    assert (turbo.width == pillow.width).all() and (turbo.height == pillow.height).all()
    # The PNG holds Pillow's decode of the JPEG (its bundled libjpeg); the two decodes differ slightly.
    assert np.percentile(hamming(turbo.phash, pillow.phash), 95) <= 2
    assert max_level_difference(turbo.thumbnail, pillow.thumbnail).max() <= 4  # half the colour tolerance
    # Grid digits are exact keys; across decoders a cell mean on a digit boundary may step by one.
    assert np.abs(turbo.colour.astype(int) - pillow.colour).max() <= 1


@pytest.mark.parametrize("size", [(60, 80), (100, 100), (300, 200), (800, 1066)])
def test_libjpeg_turbo_decodes_at_pillows_draft_size(size):
    data = jpeg(picture(2, size=size))
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (32, 32))
        expected = image.size
    rgb, width, height = decode_rgb(data)
    assert (width, height) == size and (rgb.shape[1], rgb.shape[0]) == expected


def test_batch_capacity_bounds_the_float_pixels_of_a_batch():
    assert image_hashes.batch_capacity((80, 60, 3)) == image_hashes.BATCH  # myntra thumbnails
    for shape in ((133, 100, 3), (300, 300, 3), (4000, 4000, 3)):
        capacity = image_hashes.batch_capacity(shape)
        assert 1 <= capacity < image_hashes.BATCH
        assert capacity == 1 or capacity * 4 * np.prod(shape) <= image_hashes.BATCH_BYTES


def test_large_decoded_sizes_hash_in_smaller_batches_like_single_images(tmp_path: Path, monkeypatch):
    """When a size's batch is capped by bytes, full and partial batches still give each row its own
    image's hashes (the cap set so that 60x80 pictures, decoded at full size, go two to a batch)."""
    monkeypatch.setattr(image_hashes, "BATCH_BYTES", 2 * 4 * 80 * 60 * 3)
    assert image_hashes.batch_capacity((80, 60, 3)) == 2
    paths = []
    for i in range(7):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(jpeg(picture(i, size=(60, 80))))
        paths.append(path)
    jobs = [ImageJob((str(p),), None) for p in paths]
    image_hashes._buffers.cache_clear()
    together = hash_chunk(jobs)
    assert image_hashes._buffers(80, 60, 3)._pixels.shape[1] == 2  # the buffer kept holds one capped batch
    image_hashes._buffers.cache_clear()
    assert together.ok.all()
    for row, job in enumerate(jobs):
        alone = hash_chunk([job])
        for field in ("phash", "phash256", "grid", "colour", "thumbnail"):
            assert np.array_equal(getattr(together, field)[row], getattr(alone, field)[0]), (row, field)
