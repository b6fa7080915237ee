"""KFP component of the dedupe stage (logic in :mod:`ecom_kfp.dedupe`).

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""


from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from ecom_kfp.components.common import cpu_component


@cpu_component
def hash_dedupe_op(products: Input[Dataset], deduped: Output[Dataset], samples: Output[HTML],
                   metrics: Output[Metrics], near_threshold: int = 6, near_colour_tolerance: int = 8,
                   title_rule: bool = True,
                   sha256_rule: bool = True, grid_rule: bool = True, phash_rule: bool = True,
                   workers: int = 0, embedding_model: str = ''):
    """Find exact and near-duplicate products in an ingest output; keep one per group.

    Args:
        products: Ingest output (IngestLayout directory).
        deduped: DedupeLayout directory: kept products with group_id, duplicates, rejects, report.
        samples: HTML page of sample duplicate groups with thumbnails.
        metrics: Counts per rule, rejects, timings.
        near_threshold: Max pHash Hamming distance of near-duplicate images.
        near_colour_tolerance: Max difference (levels, 255 = off) of a pHash match's 8x8 YCbCr thumbnails.
        title_rule: Identical normalised titles are duplicates.
        sha256_rule: Byte-identical images are duplicates.
        grid_rule: Equal e-CLIP colour-grid keys are duplicates.
        phash_rule: Search near-duplicate images by perceptual hash.
        workers: Hashing processes (0 = one per CPU).
        embedding_model: Keras .keras file or SavedModel dir (path or gs://) embedding images; '' = rule off.
    """
    import shutil

    from ecom_kfp.contracts.layouts import DedupeLayout
    from ecom_kfp.dedupe import DedupeConfig, run
    from ecom_kfp.report import scalar_metrics

    report = run(DedupeConfig(products_uri=products.path, out_uri=deduped.path, near_threshold=near_threshold,
                              near_colour_tolerance=near_colour_tolerance, title_rule=title_rule,
                              sha256_rule=sha256_rule, grid_rule=grid_rule, phash_rule=phash_rule,
                              workers=workers, embedding_model=embedding_model, progress=False))
    shutil.copyfile(DedupeLayout(deduped.path).samples_html, samples.path)
    for name, value in scalar_metrics(report).items():
        metrics.log_metric(name, value)
