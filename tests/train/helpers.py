"""Helpers of the train tests (plain functions and constants; fixtures are in conftest.py)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

from ecom_kfp.contracts import features, labels
from ecom_kfp.contracts.digests import DIGESTS_KEY, tree_digests
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.tfrecord_build.text import PieceVectors
from ecom_kfp.train.data import MANIFEST_COUNTS, MANIFEST_FEATURE_SPEC

#: (category path, colour, title words) per leaf class.
LEAVES = [
    (("Apparel", "Topwear", "Tshirts"), (200, 30, 30), "cotton crew neck tshirt"),
    (("Apparel", "Topwear", "Shirts"), (30, 30, 200), "slim fit formal shirt"),
    (("Apparel", "Bottomwear", "Jeans"), (20, 20, 90), "skinny stretch denim jeans"),
    (("Footwear", "Shoes", "Sneakers"), (30, 160, 30), "running sports sneakers"),
    (("Footwear", "Shoes", "Heels"), (220, 140, 20), "stiletto party heels"),
    (("Footwear", "Sandals", "Flip Flops"), (120, 40, 160), "rubber beach flip flops"),
]


BRANDS = ["Nike", "Puma", "Roadster", "Levis", "Mango", "Bata"]


COLOURS = ["Red", "Blue", "Black", "White", "Green", "Grey"]


SPLIT_SIZES = {"train": 96, "val": 24, "test": 24}


SHARDS = {"train": 2, "val": 1, "test": 1}


STORED_IMAGE_SIZE = 40


TITLE_VECTOR_DIM = 16


def product_image(colour: tuple[int, int, int], leaf: int, rng: random.Random, size: tuple[int, int]) -> bytes:
    """A JPEG whose colour and stripe count identify the leaf class, with noise and jitter."""
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    w, h = size
    jitter = [rng.randint(-3, 3) for _ in range(4)]
    shade = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in colour)
    draw.rectangle([w // 6 + jitter[0], h // 6 + jitter[1], 5 * w // 6 + jitter[2], 5 * h // 6 + jitter[3]], fill=shade)
    for stripe in range(leaf % 3 + 1):
        y = h // 4 + stripe * h // 6
        draw.line([w // 6, y, 5 * w // 6, y], fill=(255, 255, 255), width=2)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_dataset(root: Path, seed: int = 0) -> DatasetLayout:
    """Write the tiny dataset under ``root``; returns its layout."""
    import sentencepiece
    import tensorflow as tf
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    rng = random.Random(seed)
    layout = DatasetLayout(str(root))
    spec = features.FeatureSpec(num_levels=3, title_vector_dim=TITLE_VECTOR_DIM, image_size=STORED_IMAGE_SIZE)
    vocabularies = [
        labels.Vocabulary(level, (labels.OTHER, *sorted({labels.class_name(path, level) for path, _, _ in LEAVES})))
        for level in (1, 2, 3)
    ]
    labels.save_all(vocabularies, layout.labels)

    products = {}
    for split, count in SPLIT_SIZES.items():
        rows = []
        for i in range(count):
            leaf = i % len(LEAVES)
            path, colour, words = LEAVES[leaf]
            title = f"{rng.choice(BRANDS)} men {rng.choice(COLOURS)} {words}"
            raw = product_image(colour, leaf, rng, (rng.randint(30, 60), rng.randint(40, 80)))
            stored = features.resize_pil(Image.open(io.BytesIO(raw)), STORED_IMAGE_SIZE)
            buf = io.BytesIO()
            stored.save(buf, format="JPEG", quality=features.JPEG_QUALITY)
            ids = [v.lookup(labels.class_name(path, v.level)) for v in vocabularies]
            rows.append((f"{split}-{i}", title, buf.getvalue(), ids))
        products[split] = rows

    text_dir = root / "text"
    text_dir.mkdir(parents=True)
    corpus = text_dir / "titles.txt"
    corpus.write_text("\n".join(title.lower() for rows in products.values() for _, title, _, _ in rows) + "\n")
    sentencepiece.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(text_dir / "spm"), vocab_size=60,
                                             model_type="unigram", character_coverage=1.0, minloglevel=2)
    corpus.unlink()
    (text_dir / "spm.vocab").unlink()
    processor = sentencepiece.SentencePieceProcessor(model_file=layout.spm_model)
    documents = [TaggedDocument(processor.encode(title.lower(), out_type=str), [pid])
                 for rows in products.values() for pid, title, _, _ in rows]
    doc2vec = Doc2Vec(documents, vector_size=TITLE_VECTOR_DIM, min_count=1, epochs=5, dm=1, workers=1, seed=seed)
    PieceVectors.of(doc2vec).save(layout, {"dim": TITLE_VECTOR_DIM, "epochs": 5})

    for split, rows in products.items():
        per_shard = -(-len(rows) // SHARDS[split])
        for index in range(SHARDS[split]):
            target = layout.shard(split, index, SHARDS[split])
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            with tf.io.TFRecordWriter(target, options="GZIP") as writer:
                for pid, title, jpeg, level_ids in rows[index * per_shard:(index + 1) * per_shard]:
                    writer.write(spec.serialize(image_jpeg=jpeg, title=title, title_vector=list(doc2vec.dv[pid]),
                                                labels=level_ids, business_value=1.0 + level_ids[-1] / 10,
                                                product_id=pid, group_id=pid))
    manifest = {MANIFEST_FEATURE_SPEC: spec.to_dict(), MANIFEST_COUNTS: dict(SPLIT_SIZES),
                DIGESTS_KEY: tree_digests(str(root))}
    Path(layout.manifest).write_text(json.dumps(manifest, indent=2))
    return layout


def backbone_weights(directory: Path, image_size: int, name: str = "small-cnn"):
    """A freshly initialised ``name`` backbone (seed 1) and the ``.weights.h5`` file it was saved to,
    for runs that need ``--weights`` (``--frozen-backbone``): ``(backbone, path)``."""
    import keras

    from ecom_kfp.train.backbones import build_backbone

    keras.utils.set_random_seed(1)
    backbone = build_backbone(name, image_size)
    path = str(directory / f"{name}.weights.h5")
    backbone.save_weights(path)
    return backbone, path
