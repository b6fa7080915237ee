"""KFP component of the dedupe stage (logic in :mod:`ecom_kfp.dedupe`).

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""


from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.dedupe.config import DedupeConfig
from ecom_kfp.settings import component_doc


@cpu_component
@component_doc(DedupeConfig, "Remove products that are copies of others in an ingest output (image evidence, no "
               "chains), and group near-copies into leak groups for the splits.",
               products="Ingest output (IngestLayout directory).",
               deduped="DedupeLayout directory: kept products with group_id, split_group and label_conflict, "
                       "duplicates, rejects, report.",
               samples="HTML page of random removals side by side, and the label conflicts.",
               metrics="Counts per rule, rejects, timings.")
def dedupe_op(products: Input[Dataset], deduped: Output[Dataset], samples: Output[HTML],
              metrics: Output[Metrics], near_threshold: int = 6, near_colour_tolerance: int = 8,
              title_near_threshold: int = 6, title_colour_tolerance: int = 8, sha256_rule: bool = True,
              phash_title_rule: bool = True, phash_rule: bool = True, title_rule: bool = True,
              grid_rule: bool = True, near_removes: bool = False, workers: int = 0, embedding_model: str = '',
              embedding_model_sha256: str = ''):
    import shutil

    from ecom_kfp.contracts.layouts import DedupeLayout
    from ecom_kfp.dedupe import DedupeConfig, run
    from ecom_kfp.report import scalar_metrics

    report = run(DedupeConfig(products_uri=products.path, out_uri=deduped.path, near_threshold=near_threshold,
                              near_colour_tolerance=near_colour_tolerance, title_near_threshold=title_near_threshold,
                              title_colour_tolerance=title_colour_tolerance, sha256_rule=sha256_rule,
                              phash_title_rule=phash_title_rule, phash_rule=phash_rule, title_rule=title_rule,
                              grid_rule=grid_rule, near_removes=near_removes, workers=workers,
                              embedding_model=embedding_model, embedding_model_sha256=embedding_model_sha256,
                              progress=False))
    shutil.copyfile(DedupeLayout(deduped.path).samples_html, samples.path)
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)
