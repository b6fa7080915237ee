"""Kubeflow pipelines assembled from the stage components, and the tools around them.

- :mod:`~ecom_kfp.pipelines.training`: ``training_pipeline`` (ingest -> dedupe -> TFRecords ->
  train -> evaluate -> push when blessed).
- :mod:`~ecom_kfp.pipelines.data`: ``data_pipeline`` (sharded ingest fan-out -> merge -> dedupe ->
  TFRecords) for catalogs too large for one pod.
- :mod:`~ecom_kfp.pipelines.task_settings`: resources, GPU pool, retries shared by both.
- :mod:`~ecom_kfp.pipelines.catalog`: every shipped component and pipeline by file name.
- :mod:`~ecom_kfp.pipelines.compile` / :mod:`~ecom_kfp.pipelines.readme`: generated YAML and READMEs.
- :mod:`~ecom_kfp.pipelines.validate`: strict checks of compiled YAML.
- :mod:`~ecom_kfp.pipelines.local_run` / :mod:`~ecom_kfp.pipelines.submit`: running them.

Caching is on for every task (the KFP default, kept on deliberately). On a Kubeflow cluster a
task's cache fingerprint is the SHA-256 of its image, its command and arguments (for these
lightweight components that includes the component's Python source), its input parameter values,
the names of its input artifacts and the specs of its outputs. So a changed parameter, a changed
component, a new package version (new image tag) or a new upstream artifact reruns the task and
everything downstream of it. The one input the fingerprint cannot see into is the catalog behind
the ``catalog`` URI: publish each catalog snapshot under a new URI (for example a dated prefix),
or submit with caching disabled (``ecom-kfp submit --no-cache``) to re-read the same URI.
"""
