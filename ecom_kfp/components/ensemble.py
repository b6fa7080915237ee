"""KFP components of the ensemble stage (logic in :mod:`ecom_kfp.ensemble`): the seeds its members
train with, and the averaging.

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""


from kfp.dsl import Input, Metrics, Model, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.ensemble.config import EnsembleConfig
from ecom_kfp.settings import component_doc


@cpu_component
@component_doc(EnsembleConfig, "Average models trained on the same dataset into one model that evaluate, push and "
                               "predict take like a train output. Gather the members of a dsl.ParallelFor over "
                               "seeds with dsl.Collected(train_op(...).outputs['model']).",
               models="Train outputs (ModelLayout directories) of the same dataset.",
               ensemble="The averaged model (ModelLayout directory, no model.keras).",
               metrics="Members, weights, classes per level, timings.")
def ensemble_op(models: Input[list[Model]], ensemble: Output[Model], metrics: Output[Metrics],
                weights: list[float] = []):  # noqa: B006 (KFP reads the default from the signature)
    from ecom_kfp.ensemble.config import EnsembleConfig
    from ecom_kfp.ensemble.stage import run
    from ecom_kfp.report import scalar_metrics

    result = run(EnsembleConfig(model_uris=[model.path for model in models], out_uri=ensemble.path,
                                weights=list(weights)))
    ensemble.metadata.update({"members": len(result.members), "content_sha256": result.content_sha256})
    for name, value in scalar_metrics(result).items():
        metrics.log_metric(name, value)


@cpu_component
def seed_plan_op(seeds: list[int]) -> list[int]:
    """The training seeds of an ensemble's members, checked before any member trains.

    ``ensemble_op`` refuses a wrong member count only after every member has trained; this
    component fails the run before the first GPU hour is spent. It needs no inputs but the run
    parameter, so it runs beside ingest and adds no time to a run.

    Args:
        seeds: One training seed per member: 1 to 16 distinct integers.

    Returns:
        Output: The seeds as integers, the items of the ``dsl.ParallelFor`` over members.
    """
    from ecom_kfp.ensemble.config import check_member_seeds

    # A list parameter's items reach the executor through JSON, so numbers arrive as floats (0.0),
    # and the UI's list field takes anything a user types (true, "1", 0.5).
    def integral(seed: object) -> bool:
        return isinstance(seed, (int, float)) and not isinstance(seed, bool) and float(seed).is_integer()

    if bad := [seed for seed in seeds if not integral(seed)]:
        raise ValueError(f"seeds: not integers: {bad!r}")
    as_ints = [int(seed) for seed in seeds]
    check_member_seeds(as_ints, "seeds")
    return as_ints
