"""What ingest remembers per product, kept on local disk: the product ids seen and each image source's outcome.

Both grow with the shard (one entry per product, one per distinct source) and are looked up at
random, so in Python objects they cost ~100 and ~175 bytes each: ~340 bytes per product in all,
gigabytes for a shard of tens of millions. Here they are tables of one sqlite3 database (the
standard library) in the run's local scratch directory, read and written through a page cache of
:data:`CACHE_KIB`: the process holds that much whatever the shard's size, the rest is on disk (a
few tens of bytes per entry). Lookups are exact: product ids are compared as the ids themselves,
sources by a 128-bit BLAKE2b digest as before. The database is a scratch file: it is never
committed or synced (no journal) and is deleted with the scratch directory.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3

from ecom_kfp.ingest.fetch import FetchedImage, FetchFailure, FetchOutcome
from ecom_kfp.ingest.reasons import Reason
from ecom_kfp.ingest.store import ImageStore

#: Page cache of the scratch database (KiB): what the maps below cost in memory, whatever the shard.
CACHE_KIB = 4096


class ScratchDb:
    """The scratch database file ``ingest.sqlite`` under a local directory (one connection, this thread)."""

    def __init__(self, directory: str):
        self.connection = sqlite3.connect(os.path.join(directory, "ingest.sqlite"))
        # Nothing here must survive the run: no rollback journal, no fsync, one transaction never committed.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{CACHE_KIB}",
                       "locking_mode = EXCLUSIVE", "temp_store = FILE"):
            self.connection.execute(f"PRAGMA {pragma}")

    def close(self) -> None:
        self.connection.close()


class SeenIds:
    """The keys seen so far: product ids for ``duplicate_product_id`` (or, in table ``name``, other names)."""

    def __init__(self, db: ScratchDb, name: str = "ids"):
        self._db = db.connection
        # ``name`` is one of this package's constants, never input.
        self._db.execute(f"CREATE TABLE {name} (id BLOB PRIMARY KEY) WITHOUT ROWID")
        self._insert = f"INSERT OR IGNORE INTO {name} VALUES (?)"

    def add(self, key: str) -> bool:
        """Remember ``key``; False when it was seen before."""
        # Bytes compare exactly, and any str encodes (sqlite3 refuses a str with a lone surrogate).
        return self._db.execute(self._insert, (key.encode("utf-8", "surrogatepass"),)).rowcount == 1


class Outcomes:
    """The outcome of every image source added, keyed by a 128-bit digest of the source.

    A stored image is kept as its raw hash and size (its URI is the store's for that hash), a
    failure as its reason, detail and attempts: a source repeated anywhere in the shard gets the
    outcome of its one fetch without keeping the products that used it.
    """

    def __init__(self, db: ScratchDb, name: str, store: ImageStore):
        self._db = db.connection
        self._store = store
        # ``name`` is one of this package's constants, never input.
        self._db.execute(f"CREATE TABLE {name} (key BLOB PRIMARY KEY, sha256 BLOB, width INT, height INT, "
                         "reason TEXT, detail TEXT, attempts INT) WITHOUT ROWID")
        self._insert = f"INSERT OR REPLACE INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?)"
        self._select = f"SELECT sha256, width, height, reason, detail, attempts FROM {name} WHERE key = ?"

    @staticmethod
    def _key(source: str) -> bytes:
        return hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def __contains__(self, source: str) -> bool:
        return self.get(source) is not None

    def add(self, source: str, outcome: FetchOutcome) -> None:
        if isinstance(outcome, FetchFailure):
            row = (None, None, None, outcome.reason.value, outcome.detail, outcome.attempts)
        else:
            row = (bytes.fromhex(outcome.sha256), outcome.width, outcome.height, None, None, None)
        self._db.execute(self._insert, (self._key(source), *row))

    def get(self, source: str) -> FetchOutcome | None:
        """The outcome of ``source``, None when unknown."""
        row = self._db.execute(self._select, (self._key(source),)).fetchone()
        if row is None:
            return None
        sha, width, height, reason, detail, attempts = row
        if sha is None:
            return FetchFailure(Reason(reason), detail, attempts)
        sha = sha.hex()
        return FetchedImage(sha, self._store.uri_of(sha), width, height, 0, 0, newly_stored=False, attempts=0)
