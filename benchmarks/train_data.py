"""The myntra-dev dataset the training benchmarks share, built once with ``ecom_kfp.tfrecord_build``.

styles.csv becomes a dedupe-shaped products table (category path masterCategory > subCategory >
articleType, the local image as ``image_uri``, each product its own group), then
``tfrecord-build`` writes the shards. Cached under ``--work`` so each benchmark pays once.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

from _common import MYNTRA  # benchmarks/ is on sys.path as a script; honours ECOM_KFP_SHARED_DATA

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.layouts import DatasetLayout, DedupeLayout, ModelLayout


def myntra_dataset(work: Path, image_size: int = 64, limit: int = 0) -> DatasetLayout:
    """Build (or reuse) the myntra-dev TFRecord dataset under ``work``, of its first ``limit`` products
    (0: all of them)."""
    from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig
    from ecom_kfp.tfrecord_build.stage import run

    subset = f"-{limit}" if limit else ""
    layout = DatasetLayout(str(work / f"myntra-dataset-{image_size}{subset}"))
    if uri.exists(layout.manifest):
        return layout
    products = DedupeLayout(str(work / f"myntra-products{subset}"))
    rows = []
    with open(MYNTRA / "styles.csv", newline="", encoding="utf-8") as fh:
        for row in itertools.islice(csv.DictReader(fh), limit or None):
            rows.append({"product_id": row["id"], "title": row["productDisplayName"],
                         "title_normalized": row["productDisplayName"].lower(),
                         "category_path": [row["masterCategory"], row["subCategory"], row["articleType"]],
                         "business_value": 1.0, "image_uri": str(MYNTRA / "images" / row["image"]),
                         "group_id": row["id"], "group_size": 1, "source": "myntra-dev"})
    uri.write_parquet(tables.from_rows(rows, tables.DEDUPED_PRODUCTS), products.products)
    run(TFRecordBuildConfig(products=products.root, out=layout.root, image_size=image_size, max_levels=3))
    return layout


def untrained_serving_model(work: Path, data, tokenizer, backbone: str = "small-cnn",
                            image_size: int = 64) -> ModelLayout:
    """The trainer's real fused architecture with untrained weights, written as train writes a model:
    serving SavedModel, ``model.keras``, labels, manifest, training record and digests (evaluate and
    predict verify them). Cached under ``work``, keyed by the dataset.

    Throughput does not depend on the weights. ``data`` is a ``TrainingData`` of the dataset, ``tokenizer``
    its ``TitleTokenizer``.
    """
    from ecom_kfp.contracts.digests import write_model_digests
    from ecom_kfp.contracts.training import TrainingRecord
    from ecom_kfp.train.export import export_serving
    from ecom_kfp.train.model import ModelSpec, build_classifier, plain_functional

    layout = ModelLayout(str(work / f"bench-model-{Path(data.layout.root).name}-{backbone}-{image_size}"))
    if not uri.exists(layout.digests):
        model = build_classifier(ModelSpec(data.num_classes, "fused", backbone, image_size, tokenizer.vocab_size,
                                           32, 64))
        export_serving(model, tokenizer, image_size, data.spec.resize_mode, data.spec.num_levels, layout.saved_model)
        plain_functional(model, data.spec.num_levels).save(layout.keras_model)
        uri.copy_tree(data.layout.labels, layout.labels)
        uri.copy(data.layout.manifest, layout.manifest)
        TrainingRecord.of(["train"]).write(layout)
        write_model_digests(layout)  # last: it covers the files above
    return layout
