"""Union-find over array indices, vectorised with numpy for millions of edges.

Each round links the root of every edge's larger endpoint to the smaller root (so parent links
always point to smaller indices and cannot form cycles) and then compresses paths by pointer
jumping. Rounds repeat until every edge's endpoints share a root.
"""

from __future__ import annotations

import numpy as np


class UnionFind:
    """Disjoint sets of ``0..n-1``; the representative of a set is its smallest member."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def roots(self) -> np.ndarray:
        """Representative of every element (and fully compressed paths)."""
        while True:
            grand = self.parent[self.parent]
            if np.array_equal(grand, self.parent):
                return self.parent
            self.parent = grand

    def union(self, left: np.ndarray, right: np.ndarray) -> None:
        """Merge the sets of ``left[i]`` and ``right[i]`` for every ``i``."""
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        # Every productive round merges at least one pair of sets, so n rounds always suffice.
        for _ in range(len(self.parent)):
            roots = self.roots()
            a, b = roots[left], roots[right]
            apart = a != b
            if not apart.any():
                return
            left, right = left[apart], right[apart]
            lo, hi = np.minimum(a[apart], b[apart]), np.maximum(a[apart], b[apart])
            np.minimum.at(self.parent, hi, lo)
