"""The TFRecord build end to end on real Myntra products: accounting, records, manifest, errors."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecom_kfp import uri
from ecom_kfp.contracts import labels
from ecom_kfp.contracts.features import FeatureSpec, model_title
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.tfrecord_build import run
from ecom_kfp.tfrecord_build.config import ConfigError
from ecom_kfp.tfrecord_build.inputs import InputError, read_products
from ecom_kfp.tfrecord_build.manifest import COUNTS, FEATURE_SPEC
from ecom_kfp.tfrecord_build.splits import assign_splits
from ecom_kfp.tfrecord_build.text import PieceVectors, TitleEmbedder, sentencepiece_processor, train_doc2vec
from tests.tfrecord_build.helpers import DedupeOutput, small_config


def read_records(root: str) -> dict[str, list[dict]]:
    """Every record of every split, parsed with the shared feature spec."""
    import tensorflow as tf

    layout = DatasetLayout(root)
    spec = FeatureSpec.from_dict(uri.read_json(layout.manifest)[FEATURE_SPEC])
    out: dict[str, list[dict]] = {}
    for split in layout.SPLITS:
        files = sorted(uri.list_files(layout.split_dir(split), suffix=".tfrecord.gz"))
        records = []
        for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(64):
            parsed = spec.parse(batch)
            for i in range(int(tf.shape(batch)[0])):
                records.append({k: v[i].numpy() for k, v in parsed.items()})
        out[split] = records
    return out


@pytest.fixture(scope="module")
def records(built) -> dict[str, list[dict]]:
    return read_records(str(built[0]))


def test_every_product_is_in_exactly_one_split_or_rejected(built, records, dedupe_output: DedupeOutput) -> None:
    out, report = built
    written = [r["product_id"].decode() for split in records.values() for r in split]
    rejected = uri.read_parquet(DatasetLayout(str(out)).rejects).to_pylist()
    assert len(written) == len(set(written)) == report.records
    assert Counter(written + [r["product_id"] for r in rejected]) == Counter(dedupe_output.product_ids)
    assert {r["product_id"]: r["reason"] for r in rejected} == dedupe_output.broken
    assert all(r["stage"] == "tfrecord-build" and r["detail"] for r in rejected)
    assert report.input_products == report.records + report.rejected


def test_no_group_crosses_splits_in_the_written_records(records) -> None:
    splits_of_group = defaultdict(set)
    for split, rows in records.items():
        for r in rows:
            splits_of_group[r["group_id"]].add(split)
    assert max(len(s) for s in splits_of_group.values()) == 1
    sizes = Counter(r["group_id"] for rows in records.values() for r in rows)
    assert max(sizes.values()) > 1, "the fixture must have groups of several products for this test to mean anything"


def test_records_parse_and_images_are_stored_at_the_configured_size(built, records) -> None:
    import tensorflow as tf

    spec = FeatureSpec.from_dict(uri.read_json(DatasetLayout(str(built[0])).manifest)[FEATURE_SPEC])
    assert (spec.image_size, spec.resize_mode, spec.title_vector_dim, spec.num_levels) == (32, "pad", 8, 3)
    record = next(r for r in records["train"] if r["product_id"] == b"wide-1")
    image = Image.open(io.BytesIO(record["image"]))
    assert image.format == "JPEG" and image.size == (32, 32)
    # 320x120 padded to a square: white bands above and below the red banner.
    assert image.getpixel((16, 1))[0] > 240 and image.getpixel((16, 1))[1] > 240
    assert image.getpixel((16, 16))[1] < 120
    assert spec.decode_image(tf.constant(record["image"])).shape == (32, 32, 3)
    assert record["title"] == b"Roadster Men Red Wide Banner Tshirts"
    assert record["title_vector"].shape == (8,) and abs(record["title_vector"]).sum() > 0


def _doc2vec_of_the_build(layout: DatasetLayout, products: str):
    """The build's Doc2Vec, trained again as the stage trains it (single thread, seeded, same titles in the
    same order): the dataset publishes only its piece vectors, as data."""
    config = small_config(products, layout.root)
    read, _ = read_products(products)
    split_of = assign_splits(read, config.split_fractions, salt=config.split_salt, stratify=config.stratify)
    train = [p for p in read if split_of[p.product_id] == "train"]
    processor = sentencepiece_processor(uri.read_bytes(layout.spm_model))
    return train_doc2vec([(p.product_id, processor.encode(p.title, out_type=str)) for p in train],
                         config.doc2vec_dim, config.doc2vec_epochs, config.seed)


def test_title_vectors_are_inferred_with_the_configured_epochs(built, records, dedupe_output: DedupeOutput) -> None:
    layout = DatasetLayout(str(built[0]))
    text = uri.read_json(layout.manifest)["text"]
    assert (text["doc2vec_epochs"], text["doc2vec_infer_epochs"]) == (5, 3) == (built[1].text["doc2vec_epochs"],
                                                                            built[1].text["doc2vec_infer_epochs"])
    doc2vec = _doc2vec_of_the_build(layout, dedupe_output.layout.root)
    published = PieceVectors.load(layout)
    assert published.pieces == tuple(doc2vec.wv.index_to_key)
    assert np.array_equal(published.vectors, doc2vec.wv.vectors)
    spm_model = uri.read_bytes(layout.spm_model)
    configured = TitleEmbedder(spm_model, doc2vec, seed=0, epochs=3)
    trained = TitleEmbedder(spm_model, doc2vec, seed=0)
    rows = [r for rows in records.values() for r in rows][:20]
    assert all(np.allclose(r["title_vector"], configured.vector(r["title"].decode())) for r in rows)
    assert not any(np.allclose(r["title_vector"], trained.vector(r["title"].decode())) for r in rows)
    # Products with the same title (one duplicate group here) carry the same vector.
    by_title: dict[bytes, set[bytes]] = defaultdict(set)
    for r in (r for rows in records.values() for r in rows):
        by_title[r["title"]].add(r["title_vector"].tobytes())
    assert all(len(v) == 1 for v in by_title.values())
    assert len(by_title) < sum(len(rows) for rows in records.values())


def test_manifest_counts_match_the_records(built, records, dedupe_output: DedupeOutput) -> None:
    layout = DatasetLayout(str(built[0]))
    manifest = uri.read_json(layout.manifest)
    vocabularies = labels.load_all(layout.labels, 3)
    for split, rows in records.items():
        assert manifest[COUNTS][split]["total"] == len(rows) == built[1].splits[split]
        for vocabulary in vocabularies:
            key = f"level_{vocabulary.level}"
            got = Counter(vocabulary.classes[int(r[labels_key(vocabulary.level)])] for r in rows)
            assert {k: v for k, v in manifest[COUNTS][split][key].items() if v} == dict(got)
    assert set(manifest["versions"]) >= {"tensorflow", "sentencepiece", "gensim", "pillow"}
    assert manifest["input"] == dedupe_output.layout.root


def labels_key(level: int) -> str:
    return f"label_level_{level}"


def test_folding_and_unknown_categories_go_to_other_and_are_counted(built, records) -> None:
    out, report = built
    layout = DatasetLayout(str(out))
    level3 = labels.Vocabulary.load(layout.labels, 3)
    train_counts = Counter(level3.classes[int(r["label_level_3"])] for r in records["train"])
    folded = report.folding["levels"]["level_3"]["folded_classes"]
    assert folded and all(n < 3 for n in folded.values())
    assert not set(folded) & set(level3.classes)
    assert all(n >= 3 for name, n in train_counts.items() if name != labels.OTHER)
    uncategorised = [r for rows in records.values() for r in rows if r["product_id"] == b"no-category"]
    assert len(uncategorised) == 1 and all(uncategorised[0][labels_key(k)] == 0 for k in (1, 2, 3))
    others = report.folding["other_records"]
    assert sum(others[s]["level_1"]["no_category"] for s in others) == 1
    assert sum(others[s]["level_3"]["folded"] + others[s]["level_3"]["unseen"] for s in others) > 0


def test_golden_test_coverage_is_reported(built, records) -> None:
    golden = built[1].golden_test
    assert golden["records"] == len(records["test"])
    level1 = golden["level_1"]
    assert level1["covered"] + len(level1["missing"]) == level1["classes"] == built[1].classes["level_1"]


def test_a_rebuild_writes_the_same_records(built, records, dedupe_output: DedupeOutput, tmp_path: Path) -> None:
    run(small_config(dedupe_output.layout.root, str(tmp_path / "again")))
    again = read_records(str(tmp_path / "again"))
    for split in records:
        assert [r["product_id"] for r in again[split]] == [r["product_id"] for r in records[split]]
        assert all((a["title_vector"] == b["title_vector"]).all() and a["image"] == b["image"]
                   for a, b in zip(again[split], records[split], strict=True))
    shards = sorted(Path(built[0]).glob("*/*.tfrecord.gz"))
    assert shards and all(s.read_bytes() == (tmp_path / "again" / s.parent.name / s.name).read_bytes() for s in shards)
    assert (Path(built[0]) / "text" / "spm.model").read_bytes() == (tmp_path / "again" / "text" / "spm.model").read_bytes()


def test_title_attributes_add_the_catalog_rows_words_to_the_titles_and_the_manifest(
        built, records, dedupe_output: DedupeOutput, tmp_path: Path) -> None:
    attributes = ["gender", "usage", "base_colour"]
    report = run(small_config(dedupe_output.layout.root, str(tmp_path / "out"), title_attributes=attributes))
    layout = DatasetLayout(str(tmp_path / "out"))
    assert FeatureSpec.from_dict(uri.read_json(layout.manifest)[FEATURE_SPEC]).title_attributes == tuple(attributes)
    assert (report.records, report.rejected) == (built[1].records, built[1].rejected)
    rejected = {r["product_id"]: r["reason"] for r in uri.read_parquet(layout.rejects).to_pylist()}
    assert rejected == dedupe_output.broken  # attribute words never stand in for a blank title
    rows = {r["product_id"]: r for r in uri.read_parquet(dedupe_output.layout.products).to_pylist()}
    plain = {r["product_id"].decode(): r["title"].decode() for split in records.values() for r in split}
    with_words = {r["product_id"].decode(): r["title"].decode()
                  for split in read_records(layout.root).values() for r in split}
    assert with_words.keys() == plain.keys()
    for pid, title in with_words.items():
        assert title == model_title(rows[pid]["title"].strip(), rows[pid]["source"], attributes)
    styled = json.loads(rows[dedupe_output.product_ids[0]]["source"])
    assert with_words[dedupe_output.product_ids[0]].endswith(
        f" gender{styled['gender'].lower()} usage{styled['usage'].lower()} basecolour{styled['baseColour'].lower()}")
    assert with_words["wide-1"] == plain["wide-1"]  # no catalog row: the title alone


def test_empty_products_table_is_a_clear_error(tmp_path: Path) -> None:
    from ecom_kfp.contracts import tables
    from ecom_kfp.contracts.layouts import DedupeLayout

    uri.write_parquet(tables.empty(tables.DEDUPED_PRODUCTS), DedupeLayout(str(tmp_path / "in")).products)
    with pytest.raises(InputError, match=r"--products .*empty"):
        run(small_config(str(tmp_path / "in"), str(tmp_path / "out")))


def test_missing_input_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--products .*no products table"):
        run(small_config(str(tmp_path / "nothing"), str(tmp_path / "out")))


def test_bad_config_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--resize-mode"):
        small_config("in", "out", resize_mode="stretch")
    with pytest.raises(ConfigError, match="--shard-index"):
        small_config("in", "out", shard_index=2, num_shards=2)
    with pytest.raises(ConfigError, match="--doc2vec-infer-epochs=0"):
        small_config("in", "out", doc2vec_infer_epochs=0)


def test_gcs_output(gcs_bucket: str, dedupe_output: DedupeOutput) -> None:
    out = f"{gcs_bucket}/dataset"
    report = run(small_config(dedupe_output.layout.root, out, resize_mode="crop"))
    layout = DatasetLayout(out)
    assert uri.exists(layout.manifest) and uri.exists(layout.spm_model) and uri.exists(layout.piece_vectors)
    manifest = uri.read_json(layout.manifest)
    written = {rel for rel in uri.relative_files(out) if rel not in ("manifest.json", "report.json")}
    assert set(manifest["digests"]) == written and "text/piece_vectors.npy" in written
    with uri.local_copy(out) as local:  # TensorFlow's own GCS client cannot reach the emulator
        records = read_records(local)
    assert sum(len(r) for r in records.values()) == report.records > 0
    assert uri.read_parquet(layout.rejects).num_rows == report.rejected
