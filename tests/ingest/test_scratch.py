"""The on-disk maps of ingest (:mod:`ecom_kfp.ingest.scratch`) on a real sqlite3 file."""

from __future__ import annotations

from pathlib import Path

from ecom_kfp.contracts.layouts import IngestLayout
from ecom_kfp.ingest.fetch import FetchedImage, FetchFailure
from ecom_kfp.ingest.reasons import Reason
from ecom_kfp.ingest.scratch import Outcomes, ScratchDb, SeenIds
from ecom_kfp.ingest.store import ImageStore


def test_ids_are_compared_exactly(tmp_path: Path) -> None:
    db = ScratchDb(str(tmp_path))
    ids = SeenIds(db)
    first = ["P1", "p1", "P1 ", "P\u00e91", "Pe\u03011", "P\udc801", ""]
    assert [ids.add(i) for i in first] == [True] * len(first)
    assert [ids.add(i) for i in first] == [False] * len(first)
    db.close()


def test_outcomes_come_back_as_they_were_added(tmp_path: Path) -> None:
    db = ScratchDb(str(tmp_path))
    store = ImageStore(IngestLayout(str(tmp_path / "out")))
    outcomes, other = Outcomes(db, "outcomes", store), Outcomes(db, "other", store)
    sha = "0f" * 32
    image = FetchedImage(sha, store.uri_of(sha), 320, 240, 1234, 2345, newly_stored=True, attempts=2)
    failure = FetchFailure(Reason.NOT_FOUND, "HTTP 404 (after 1 attempts)", 1)
    outcomes.add("http://a/1.jpg", image)
    outcomes.add("http://a/2.jpg", failure)
    assert outcomes.get("http://a/1.jpg") == FetchedImage(sha, image.uri, 320, 240, 0, 0, newly_stored=False,
                                                          attempts=0)
    assert outcomes.get("http://a/2.jpg") == failure
    assert "http://a/1.jpg" in outcomes and "http://a/3.jpg" not in outcomes
    assert "http://a/1.jpg" not in other
    db.close()
