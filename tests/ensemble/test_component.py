"""ensemble_op in a real kfp.local pipeline run (SubprocessRunner, no venv): members gathered from a
``dsl.ParallelFor`` with ``dsl.Collected``, as a pipeline that trains one model per seed would."""
# No "from __future__ import annotations": KFP reads the pipeline function's annotations as types.

import pytest
from kfp import dsl

from ecom_kfp import uri
from ecom_kfp.components import ensemble_op


@pytest.mark.e2e
def test_members_gathered_from_a_parallel_for_are_averaged(good_model, weak_model, kfp_local):
    @dsl.pipeline(name="ensemble-of-imported-models")
    def pipeline(model_uris: list):
        with dsl.ParallelFor(model_uris) as model_uri:
            member = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=False)
        ensemble_op(models=dsl.Collected(member.output), weights=[3.0, 1.0])

    pipeline(model_uris=[good_model.root, weak_model.root])
    reports = [p for p in uri.list_files(str(kfp_local), suffix="report.json") if "ensemble-op" in p]
    assert len(reports) == 1
    report = uri.read_json(reports[0])
    assert sorted(report["members"]) == sorted([good_model.root, weak_model.root])
    assert sorted(report["weights"]) == [0.25, 0.75]
