"""The batched separable maps against plain per-image numpy, and the reusable batch buffers."""

from __future__ import annotations

import numpy as np

from ecom_kfp.dedupe import ycc
from ecom_kfp.dedupe.separable import BatchBuffers, SeparableMap, batch_layout, project_many


def images(count: int, height: int = 10, width: int = 7, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]


def maps(height: int = 10, width: int = 7) -> list[SeparableMap]:
    rng = np.random.default_rng(1)
    return [SeparableMap(rng.random((4, height), dtype=np.float32), rng.random((3, width), dtype=np.float32),
                         ycc.RGB_TO_YCC[:1]),
            SeparableMap(rng.random((2, height), dtype=np.float32), rng.random((5, width), dtype=np.float32))]


def per_image(image: np.ndarray, m: SeparableMap) -> np.ndarray:
    """``rows @ channel @ cols.T`` per channel, then the mix, on one image's planes."""
    planes = image.transpose(2, 0, 1).astype(np.float64)
    projected = np.stack([m.rows @ plane @ m.cols.T for plane in planes])
    return projected if m.mix is None else np.tensordot(m.mix, projected, axes=(1, 0))


def test_project_many_equals_per_image_maps():
    batch = images(5)
    results = project_many(batch_layout(batch), maps())
    for m, result in zip(maps(), results):
        assert result.shape == (5, 1 if m.mix is not None else 3, len(m.rows), len(m.cols))
        for image, got in zip(batch, result):
            np.testing.assert_allclose(got, per_image(image, m), rtol=1e-5)


def test_buffers_give_fresh_results_batch_after_batch():
    buffers = BatchBuffers(10, 7, 3)
    first = images(4, seed=1)
    kept = buffers.project(first, maps())
    snapshot = [r.copy() for r in kept]
    # As large a batch, a smaller one in the same memory, a larger one that grows it, fewer maps.
    for batch, some in ((images(4, seed=2), maps()), (images(3, seed=3), maps()),
                        (images(6, seed=4), maps()), (images(5, seed=5), maps()[1:])):
        for got, expected in zip(buffers.project(batch, some), project_many(batch_layout(batch), some), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-6)
    # Results are arrays of their own: later batches did not overwrite the first one's.
    assert all((a == b).all() for a, b in zip(kept, snapshot))
