"""The ingest stage: read a catalog, fetch and check images, write a clean products table.

``run(IngestConfig(...)) -> IngestReport`` (in :mod:`ecom_kfp.ingest.stage`); see DESIGN.md for
the output layout. Modules: ``readers`` (catalog formats), ``column_map``, ``normalize`` (metadata
rules), ``business_value``, ``reasons`` (reject codes), ``sources`` (image references), ``fetch``
(concurrent download), ``image_check``, ``store`` (content-addressed images), ``sharding``,
``merge`` (shard outputs), ``cli`` (``ecom-kfp ingest``).
"""

from ecom_kfp.ingest.stage import IngestConfig, IngestReport, run

__all__ = ["IngestConfig", "IngestReport", "run"]
