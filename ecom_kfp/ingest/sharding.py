"""Which shard a catalog record belongs to: a stable hash of its product id.

Stable across runs, machines and Python versions (SHA-1, not ``hash()``), so every shard of a
fan-out agrees on the split and a duplicated product id always lands in one shard, where it is
caught. A record without a readable id is placed by its position in the file instead.
"""

from __future__ import annotations

import hashlib


def shard_of(key: str, num_shards: int) -> int:
    """Shard index of ``key`` among ``num_shards``."""
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def record_key(product_id: str | None, position: int) -> str:
    """The sharding key of a record: its product id, or its position when it has none."""
    return product_id if product_id is not None else f"#position:{position}"
