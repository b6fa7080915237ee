"""``shard_plan_op``: the shard indices a pipeline fans out over with ``dsl.ParallelFor``.

``dsl.ParallelFor`` iterates over a list, but a user sets one number in the Kubeflow UI
(``num_shards``); this component turns that number into ``[0, 1, ..., num_shards - 1]`` so the
fan-out and the ``num_shards`` every shard receives cannot disagree.
"""


from ecom_kfp.components.common import cpu_component


@cpu_component
def shard_plan_op(num_shards: int) -> list[int]:
    """Shard indices ``0 .. num_shards - 1``.

    Args:
        num_shards: How many shards to split the catalog into (at least 1).

    Returns:
        Output: The shard indices, the items of the ``dsl.ParallelFor`` fan-out.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    return list(range(num_shards))
