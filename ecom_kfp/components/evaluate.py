"""KFP component of the evaluate stage (logic in :mod:`ecom_kfp.evaluate`).

No ``from __future__ import annotations`` here: KFP reads the artifact annotations as types.
"""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from ecom_kfp.components.common import cpu_component
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.settings import component_doc


@cpu_component
@component_doc(EvaluateConfig, "Score a model on the test split (calibrated on validation), choose the thresholds "
                               "served with it, compare with the registry champion, decide the blessing.",
               model="Train output (ModelLayout directory).",
               dataset="Tfrecord-build output (DatasetLayout directory); its test split is scored, val calibrates.",
               returns={
                   "evaluation": "EvaluationLayout directory: metrics.json, confusion CSVs, coverage.csv, "
                                 "thresholds.json, suspect_labels.csv, report.html, blessing.json.",
                   "metrics": "Headline numbers per level, calibration, thresholds, tail, suspect labels, timings.",
                   "confusion": "Confusion matrix of the deepest level over its most valuable classes.",
                   "report": "The HTML report (plots, calibration, tail, suspect labels and worst confusions "
                             "with images).",
                   "blessed": "Whether the model passed every gate check (condition the push on it)."})
def evaluate_op(model: Input[Model], dataset: Input[Dataset], evaluation: Output[Artifact],
                metrics: Output[Metrics], confusion: Output[ClassificationMetrics], report: Output[HTML],
                business_value_uri: str = "", mlflow_tracking_uri: str = "",
                registered_model_name: str = "ecom-product-category", confidence_threshold: float = 0.5,
                target_precision: float = 0.95, min_weighted_score: float = 0.0,
                max_test_examples: int = 0) -> NamedTuple("EvaluateOutputs", [("blessed", bool)]):
    import shutil
    from collections import namedtuple

    from ecom_kfp.contracts.layouts import EvaluationLayout
    from ecom_kfp.evaluate.config import EvaluateConfig, GateConfig
    from ecom_kfp.evaluate.confusion import ConfusionTable
    from ecom_kfp.evaluate.stage import run
    from ecom_kfp.report import scalar_metrics

    result = run(EvaluateConfig(model_uri=model.path, data_uri=dataset.path, out_uri=evaluation.path,
                                business_value_uri=business_value_uri, mlflow_tracking_uri=mlflow_tracking_uri,
                                registered_model_name=registered_model_name,
                                confidence_threshold=confidence_threshold, target_precision=target_precision,
                                max_test_examples=max_test_examples,
                                gate=GateConfig(min_weighted_score=min_weighted_score)))
    for name, value in scalar_metrics(result).items():
        metrics.log_metric(name, value)
    layout = EvaluationLayout(evaluation.path)
    table = ConfusionTable.read(layout.confusion(result.confusion_level), result.confusion_level)
    confusion.log_confusion_matrix(table.categories, table.matrix.tolist())
    shutil.copyfile(layout.html, report.path)
    return namedtuple("EvaluateOutputs", ["blessed"])(result.blessed)
