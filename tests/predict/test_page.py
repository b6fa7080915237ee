"""What ``predictions.html`` shows (``PageSamples``): bounded, mergeable over shards, and checked
when read back from a shard's ``samples.json``."""

from __future__ import annotations

import dataclasses
import html
import io
import random
from types import SimpleNamespace

import pytest
from PIL import Image

from ecom_kfp import uri
from ecom_kfp.predict.html_page import PageSamples, Sample, render

CLASSES = ("Apparel > Topwear > Shirts", "Apparel > Topwear > Tshirts", "Footwear > Shoes > Sandals")


def _products(n: int, seed: int) -> list[tuple[Sample, bool]]:
    """``n`` scored products: a sample and whether it disagrees with its catalog category.
    Confidences are drawn from few values, so that ties are common."""
    rng = random.Random(seed)
    return [(Sample(f"P{i:04d}", f"title {i}", None, rng.choice(CLASSES), rng.choice((0.5, 0.7, 0.9, 0.99)),
                    rng.choice(CLASSES)), rng.random() < 0.4) for i in range(n)]


def _select(products: list[tuple[Sample, bool]], limit: int, max_classes: int = 0) -> PageSamples:
    page = PageSamples(limit, max_classes)
    for sample, disagrees in products:
        page.keep_sample(sample)
        if disagrees:
            page.keep_disagreement(sample)
    return page


def _report() -> SimpleNamespace:
    """The figures ``render`` reads from a PredictReport."""
    return SimpleNamespace(input=2, scored=2, rejected=0, accepted=2, share_accepted=1.0, suspect=1,
                           share_suspect=0.5, agreement_rate=0.0, with_catalog_category=2, thresholds=[0.5],
                           thresholds_source="thresholds.json", products_per_second=10.0, drift={},
                           model="model", predicted_classes={CLASSES[0]: 2})


def test_keeps_the_first_of_each_class_and_the_most_confident_disagreements() -> None:
    products = _products(200, seed=0)
    page = _select(products, limit=3)
    for name in CLASSES:
        assert page.samples[name] == [s for s, _ in products if s.predicted == name][:3]
    disagreeing = [s for s, disagrees in products if disagrees]
    # Most confident first; among equal confidences, the earlier product.
    assert page.disagreements == sorted(disagreeing, key=lambda s: -s.confidence)[:12]
    assert _select(products, limit=0).to_json() == {"limit": 0, "max_classes": 0, "disagreements": [], "samples": {}}


@pytest.mark.parametrize("seed", range(5))
def test_merging_the_shards_selections_gives_the_selection_over_all_products(seed: int) -> None:
    products = _products(300, seed=seed)
    cuts = sorted(random.Random(seed).sample(range(1, 300), 3))
    shards = [products[a:b] for a, b in zip([0, *cuts], [*cuts, 300])]
    # Through samples.json, as the merge reads them.
    parts = [PageSamples.from_json(_select(shard, limit=2).to_json()) for shard in shards]
    assert PageSamples.merged(parts).to_json() == _select(products, limit=2).to_json()


def test_thumbnails_are_inlined_and_a_missing_image_is_shown_as_none(tmp_path) -> None:
    picture = tmp_path / "p.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="JPEG")
    picture.write_bytes(buffer.getvalue())
    page = PageSamples(2)
    shown = Sample("P1", "red shirt", str(picture), CLASSES[0], 0.9, CLASSES[1])
    gone = Sample("P2", "blue shirt", str(tmp_path / "gone.jpg"), CLASSES[0], 0.8, CLASSES[1])
    for sample in (shown, gone):
        page.keep_sample(sample)
        page.keep_disagreement(sample)
    with_thumbnails = page.with_thumbnails()
    assert [s.thumbnail is not None for s in with_thumbnails.disagreements] == [True, False]
    assert with_thumbnails.samples[CLASSES[0]][0].thumbnail.startswith("data:image/jpeg;base64,")
    page_html = render(_report(), PageSamples.from_json(with_thumbnails.to_json()))
    assert page_html.count(with_thumbnails.disagreements[0].thumbnail) == 2  # a disagreement and a sample
    assert page_html.count("<i>no image</i>") == 2


def test_a_hostile_samples_json_is_refused_or_shown_inert() -> None:
    good = dataclasses.asdict(Sample("P1", "shirt", None, CLASSES[0], 0.9, CLASSES[1]))
    for bad in ({**good, "confidence": "0.9"}, {**good, "confidence": True}, {**good, "title": 3},
                {**good, "extra": 1}, {k: v for k, v in good.items() if k != "catalog"}, [good]):
        with pytest.raises(ValueError, match="not a sample|wrong type"):
            PageSamples.from_json({"limit": 2, "max_classes": 0, "samples": {}, "disagreements": [bad]})
    valid = {"limit": 2, "max_classes": 0, "samples": {"x": [good]}, "disagreements": [good]}
    assert PageSamples.from_json(valid).disagreements == [Sample(**good)]
    for document in (None, {**valid, "limit": -1}, {**valid, "max_classes": True}, {**valid, "samples": []},
                     {**valid, "samples": {"x": good}}, {k: v for k, v in valid.items() if k != "max_classes"}):
        with pytest.raises(ValueError, match="not a samples.json document"):
            PageSamples.from_json(document)
    hostile = {**good, "title": "<script>alert(1)</script>", "predicted": "<b>x</b>",
               "thumbnail": "javascript:alert(1)"}
    inline_html = {**good, "product_id": "P2", "thumbnail": "data:text/html;base64,PHNjcmlwdD4="}
    page = PageSamples.from_json({"limit": 2, "max_classes": 0, "samples": {}, "disagreements": [hostile, inline_html]})
    page_html = render(_report(), page)
    assert "<script>" not in page_html and "<b>x</b>" not in page_html and "&lt;script&gt;" in page_html
    assert "javascript:" not in page_html and "data:text/html" not in page_html and page_html.count("<i>no image</i>") == 2


def test_only_the_most_predicted_classes_keep_their_samples() -> None:
    products = _products(120, seed=4)
    counts = {CLASSES[0]: 5, CLASSES[1]: 50, CLASSES[2]: 50}
    page = _select(products, limit=2, max_classes=2)
    restricted = page.restricted(counts)
    assert list(restricted.samples) == [CLASSES[1], CLASSES[2]]  # ties by name
    assert restricted.disagreements == page.disagreements  # disagreements are never cut
    page_html = render(SimpleNamespace(**{**vars(_report()), "predicted_classes": counts}), restricted)
    heading = {name: f"<h3>{html.escape(name)} ({counts[name]} predicted)</h3>" for name in CLASSES}
    assert "2 of the 3 predicted classes" in page_html and heading[CLASSES[0]] not in page_html
    assert page_html.index(heading[CLASSES[1]]) < page_html.index(heading[CLASSES[2]])
    assert list(PageSamples(2).restricted(counts).samples) == []
    assert set(_select(products, limit=2).restricted(counts).samples) == set(CLASSES)  # max_classes 0: all


def test_a_merged_page_links_each_shards_page(tmp_path) -> None:
    shard_pages = [str(tmp_path / "0" / "predictions.html"), "gs://bucket/1/predictions.html", "javascript:alert(1)"]
    page_html = render(_report(), PageSamples(2), shard_pages=shard_pages)
    assert f"href='{(tmp_path / '0' / 'predictions.html').as_uri()}'" in page_html
    assert "href='https://storage.cloud.google.com/bucket/1/predictions.html'" in page_html
    assert "href='javascript:" not in page_html and "Each shard's own page (3)" in page_html


def test_read_back_from_a_written_samples_json(tmp_path) -> None:
    page = _select(_products(50, seed=9), limit=2)
    uri.write_json(str(tmp_path / "samples.json"), page.to_json())
    assert PageSamples.from_json(uri.read_json(str(tmp_path / "samples.json"))).to_json() == page.to_json()
