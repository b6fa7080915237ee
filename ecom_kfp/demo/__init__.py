"""The demo catalog: generated products with drawn images and planted defects, served on loopback.

``generate(DemoCatalogConfig(out=...))`` writes it; ``serve_directory(report.images)`` serves the
images so ingest fetches them over real HTTP. ``ecom-kfp demo-catalog`` does both from a shell.
"""

from ecom_kfp.demo.generate import DemoCatalogConfig, DemoCatalogReport, generate
from ecom_kfp.demo.serve import serve_directory

__all__ = ["DemoCatalogConfig", "DemoCatalogReport", "generate", "serve_directory"]
