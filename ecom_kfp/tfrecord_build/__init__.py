"""TFRecord build stage: deduplicated products -> leak-free splits, label vocabularies, title
models and GZIP TFRecord shards (:class:`~ecom_kfp.contracts.layouts.DatasetLayout`).

Modules, one responsibility each:

- :mod:`.config`: :class:`TFRecordBuildConfig`, the typed configuration shared by the CLI and the component.
- :mod:`.inputs`: reads the dedupe output and rejects products that cannot become records.
- :mod:`.taxonomy`: the optional Google Product Taxonomy mapping of source categories.
- :mod:`.splits`: train/val/test assignment by hashing the duplicate group.
- :mod:`.labels`: per-level vocabularies with rare classes folded into ``other``.
- :mod:`.text`: SentencePiece + Doc2Vec training, and the helpers the trainer and serving use
  (:func:`~.text.load_tf_tokenizer`, :func:`~.text.piece_vectors`).
- :mod:`.imaging`: decode / resize / re-encode one image.
- :mod:`.records`: serialized ``tf.train.Example`` records of the feature spec.
- :mod:`.writer`: shard planning (the plan table) and the parallel shard writers.
- :mod:`.manifest`: ``manifest.json``.
- :mod:`.global_step`: the plan (splits, labels, text models, shard files), once per build.
- :mod:`.shard_step`: one write piece of the plan's shard files.
- :mod:`.merge`: gathers a plan and its pieces into one dataset.
- :mod:`.stage`: :func:`run`, the stage itself (one step, or all three in one process).
"""

from ecom_kfp.tfrecord_build.config import TFRecordBuildConfig
from ecom_kfp.tfrecord_build.stage import TFRecordBuildReport, run

__all__ = ["TFRecordBuildConfig", "TFRecordBuildReport", "run"]
