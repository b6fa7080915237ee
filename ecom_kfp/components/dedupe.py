"""KFP component of the dedupe stage (logic in :mod:`ecom_kfp.dedupe`).

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""


from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.settings import component_doc


@cpu_component
@component_doc(DedupeConfig, "Find exact and near-duplicate products in an ingest output; keep one per group.",
               products="Ingest output (IngestLayout directory).",
               deduped="DedupeLayout directory: kept products with group_id, duplicates, rejects, report.",
               samples="HTML page of sample duplicate groups with thumbnails.",
               metrics="Counts per rule, rejects, timings.")
def dedupe_op(products: Input[Dataset], deduped: Output[Dataset], samples: Output[HTML],
              metrics: Output[Metrics], near_threshold: int = 6, near_colour_tolerance: int = 8,
              title_rule: bool = True, sha256_rule: bool = True, grid_rule: bool = True, phash_rule: bool = True,
              workers: int = 0, embedding_model: str = '', embedding_model_sha256: str = ''):
    import shutil

    from ecom_kfp.contracts.layouts import DedupeLayout
    from ecom_kfp.dedupe import DedupeConfig, run
    from ecom_kfp.report import scalar_metrics

    report = run(DedupeConfig(products_uri=products.path, out_uri=deduped.path, near_threshold=near_threshold,
                              near_colour_tolerance=near_colour_tolerance, title_rule=title_rule,
                              sha256_rule=sha256_rule, grid_rule=grid_rule, phash_rule=phash_rule,
                              workers=workers, embedding_model=embedding_model,
                              embedding_model_sha256=embedding_model_sha256, progress=False))
    shutil.copyfile(DedupeLayout(deduped.path).samples_html, samples.path)
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)
