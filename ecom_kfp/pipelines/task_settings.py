"""Scheduling settings shared by the pipelines: resources, the GPU pool, retries.

Values may be pipeline parameters (what a user sets in the Kubeflow UI) or constants: in kfp 2.17
``set_cpu_request``/``set_memory_request``/``set_memory_limit``, ``set_accelerator_type`` and
``set_accelerator_limit`` accept pipeline parameters, and ``kfp.kubernetes.add_node_selector_json``
takes a dict parameter. ``kfp.kubernetes.add_node_selector``/``add_toleration`` and ``set_retry``
take constants only, so the GPU taint toleration and the retry policy are fixed at compile time.

kfp 2.17 compiles a parameter-valued resource on a task *directly* inside ``dsl.ParallelFor`` or
``dsl.If`` into a spec that reads an input the loop or condition never receives (``ecom-kfp
validate`` reports it). So the sharded ingest is a small ``@dsl.pipeline`` called inside the loop
(:func:`ecom_kfp.pipelines.data.ingest_shard`), and push, inside ``dsl.If``, has fixed resources
(:func:`ecom_kfp.pipelines.training.push_if_blessed`).
"""

from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask
from kfp.dsl.pipeline_channel import PipelineChannel

Value = str | int | PipelineChannel

#: Taint that GPU node pools carry (GKE adds it to every GPU node; the NVIDIA GPU operator
#: documents the same key), so only pods that ask for a GPU land there.
GPU_TAINT_KEY = "nvidia.com/gpu"
#: Default label selecting the GPU pool by GPU model (GKE's accelerator label).
DEFAULT_GPU_NODE_SELECTOR = {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
#: Retries for tasks that talk to remote services (image hosts, MLflow, object store):
#: 60 s, 120 s, 240 s between attempts, never longer than an hour in total.
NETWORK_RETRIES = 3
NETWORK_BACKOFF = "60s"
NETWORK_BACKOFF_FACTOR = 2.0
NETWORK_BACKOFF_MAX = "3600s"


def set_resources(task: PipelineTask, cpu: Value, memory: Value) -> PipelineTask:
    """Request ``cpu`` and ``memory``; memory is also the limit.

    The memory limit equals the request so a task that outgrows it is the one OOM-killed, not a
    neighbour on the node. CPU gets no limit: CFS throttling slows TensorFlow and image decoding
    far more than it protects neighbours, and the request already reserves the share.
    """
    return task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory)


def on_gpu_pool(task: PipelineTask, accelerator: Value, count: Value,
                node_selector: dict | PipelineChannel) -> PipelineTask:
    """Run ``task`` on ``count`` GPUs of resource ``accelerator`` in the pool ``node_selector`` picks.

    Args:
        task: The training task.
        accelerator: Extended resource name of the GPU (``nvidia.com/gpu``).
        count: GPUs per pod.
        node_selector: Node labels of the GPU pool, e.g. the GPU model label.
    """
    task.set_accelerator_type(accelerator).set_accelerator_limit(count)
    kubernetes.add_node_selector_json(task, node_selector)
    kubernetes.add_toleration(task, key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")
    return task


def with_network_retries(task: PipelineTask) -> PipelineTask:
    """Retry a network-bound task with exponential backoff (transient outages, rate limits)."""
    return task.set_retry(num_retries=NETWORK_RETRIES, backoff_duration=NETWORK_BACKOFF,
                          backoff_factor=NETWORK_BACKOFF_FACTOR,
                          backoff_max_duration=NETWORK_BACKOFF_MAX)
