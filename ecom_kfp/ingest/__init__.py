"""The ingest stage: read a catalog, fetch and check images, write a clean products table.

``run(IngestConfig(...)) -> IngestReport`` (in :mod:`ecom_kfp.ingest.stage`); see docs/design.md for
the output layout. Modules: ``readers`` (catalog formats), ``column_map``, ``normalize`` (metadata
rules), ``business_value``, ``config`` (settings), ``reasons`` (reject codes), ``sources`` (image references),
``source_policy`` (which sources may be read), ``fetch``
(concurrent download), ``image_check``, ``store`` (content-addressed images), ``sharding``,
``merge`` (shard outputs), ``cli`` (``ecom-kfp ingest``).
"""

__all__ = ["IngestConfig", "IngestReport", "run"]


def __getattr__(name: str):
    # Imported on first use: image fetch worker processes import only the fetching modules, not the
    # stage's pyarrow and numpy, which would double their start-up time.
    if name == "IngestConfig":
        from ecom_kfp.ingest.config import IngestConfig

        return IngestConfig
    if name in __all__:
        from ecom_kfp.ingest import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
