"""The ingest stage: read a catalog, fetch and check images, write a clean products table.

``run(IngestConfig(...)) -> IngestReport`` (in :mod:`ecom_kfp.ingest.stage`); see docs/design.md for
the output layout. Modules: ``readers`` (catalog formats), ``column_map``, ``normalize`` (metadata
rules), ``business_value``, ``config`` (settings), ``reasons`` (reject codes), ``sources`` (image references),
``source_policy`` (which sources may be read), ``fetch``
(concurrent download), ``image_check``, ``store`` (content-addressed images), ``sharding``,
``merge`` (shard outputs), ``cli`` (``ecom-kfp ingest``).
"""

from ecom_kfp.lazy import lazy_exports

__all__ = ["IngestConfig", "IngestReport", "run"]

# Imported on first use: image fetch worker processes import only the fetching modules, not the
# stage's pyarrow and numpy, which would double their start-up time.
__getattr__ = lazy_exports(__name__, {"IngestConfig": "ecom_kfp.ingest.config",
                                      "IngestReport": "ecom_kfp.ingest.stage", "run": "ecom_kfp.ingest.stage"})
