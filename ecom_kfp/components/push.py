"""KFP component of the push stage (logic in :mod:`ecom_kfp.push`).

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""

from kfp.dsl import Artifact, Input, Metrics, Model, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.push.config import PushConfig
from ecom_kfp.settings import component_doc


@cpu_component
@component_doc(PushConfig, "Register a blessed model in MLflow and publish it to <serving_uri>/<name>/<version>/. "
                           "Run it under dsl.If(evaluate.outputs['blessed'] == True) so an unblessed model shows as "
                           "skipped; called on an unblessed model, or on a model other than the one evaluated, it "
                           "fails with the reason.",
               model="Train output (ModelLayout directory).",
               evaluation="Evaluate output (EvaluationLayout directory) that blessed the model.",
               pushed="Directory with report.json (registered model name, version, aliases, serving URI).",
               metrics="Files and bytes published, timings.")
def push_op(model: Input[Model], evaluation: Input[Artifact], pushed: Output[Artifact], metrics: Output[Metrics],
            registry_uri: str, serving_uri: str = '', registered_model_name: str = 'ecom-product-category',
            alias: str = 'champion'):
    from ecom_kfp.push.config import PushConfig
    from ecom_kfp.push.stage import run
    from ecom_kfp.report import scalar_metrics

    result = run(PushConfig(model_uri=model.path, evaluation_uri=evaluation.path, registry_uri=registry_uri,
                            out_uri=pushed.path, serving_uri=serving_uri,
                            registered_model_name=registered_model_name, alias=alias))
    pushed.metadata.update({"registered_model_name": result.registered_model_name, "version": result.version,
                            "serving_uri": result.serving_uri or "", "aliases": ",".join(result.aliases)})
    for name, value in scalar_metrics(result).items():
        metrics.log_metric(name, value)
