"""Push, and score by alias, against MLflow configured as the cluster install runs it.

Everything is real: PostgreSQL 15 on loopback (:func:`~ecom_kfp.testing.servers.postgres_server`);
``mlflow server`` started with the arguments and environment of the ``mlflow`` Deployment that
``kubectl kustomize manifests/base`` renders, its ``--artifacts-destination`` a ``gs://`` bucket of
the real ``gcp-storage-emulator``; the push and predict stages as the pipelines call them. What the
test puts in the cluster's place: its own values for the Secret's user and password, the
ConfigMap's bucket and the PostgreSQL Service's address, and loopback with free ports for the
server's ``--host``/``--port``, whose address it adds to ``--allowed-hosts``.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator

import psycopg2
import pyarrow.parquet as pq
import pytest

from ecom_kfp import uri
from ecom_kfp.contracts import registry
from ecom_kfp.contracts.layouts import PredictionLayout
from ecom_kfp.evaluate.baseline import registry_client
from ecom_kfp.evaluate.config import EvaluateConfig
from ecom_kfp.evaluate.stage import run as evaluate
from ecom_kfp.predict import PredictConfig, PredictReport
from ecom_kfp.predict import run as predict
from ecom_kfp.predict.model import KIND_REGISTRY
from ecom_kfp.push.config import PushConfig
from ecom_kfp.push.stage import run as push
from ecom_kfp.testing import tiny_classifier as tiny
from ecom_kfp.testing.servers import LOOPBACK, MlflowServer, PostgresServer, free_port, mlflow_server, postgres_server
from tests.manifests.support import one
from tests.predict.helpers import write_catalog

pytestmark = pytest.mark.slow

#: A ``$(VAR)`` reference in a container's arguments, which the kubelet expands from its env.
VAR_REF = re.compile(r"\$\((\w+)\)")
#: ``mlflow server`` options :func:`mlflow_server` passes itself (from the values it is given).
OWN_OPTIONS = {"--host", "--port", "--backend-store-uri", "--artifacts-destination", "--serve-artifacts"}
#: The Host header clients in the cluster send (the Service's tracking URI).
IN_CLUSTER_HOST = "mlflow.ecom-kfp.svc.cluster.local:5000"


@pytest.fixture()
def cluster_mlflow(tmp_path, gcs_bucket) -> Iterator[tuple[MlflowServer, PostgresServer]]:
    """``mlflow server`` with the Deployment's arguments and environment, on PostgreSQL and GCS."""
    (container,) = one("base", "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["mlflow", "server"]
    with postgres_server(tmp_path) as postgres:
        env = {e["name"]: e.get("value", "") for e in container["env"]}
        env.update(DB_USER=postgres.user, DB_PASSWORD=secrets.token_hex(16), DB_HOST=postgres.host,
                   MLFLOW_ARTIFACTS_DESTINATION=gcs_bucket)
        args = [VAR_REF.sub(lambda ref: env[ref.group(1)], arg) for arg in container["args"]]
        given = {name: value for name, _, value in (arg.partition("=") for arg in args)}
        assert "--serve-artifacts" in given
        # The manifest names the Service's port; this cluster listens on a free one.
        backend = given["--backend-store-uri"]
        assert f"@{postgres.host}:5432/" in backend
        backend = backend.replace(":5432/", f":{postgres.port}/")
        port = free_port()
        options = [f"{arg},{LOOPBACK}:{port}" if arg.startswith("--allowed-hosts=") else arg
                   for arg in args if arg.partition("=")[0] not in OWN_OPTIONS]
        with mlflow_server(tmp_path, port, backend_store_uri=backend, artifacts_destination=given["--artifacts-destination"],
                           options=options, env=env) as server:
            yield server, postgres


def _status(url: str, host: str) -> int:
    """The HTTP status of a GET of ``url`` sent with the Host header ``host``."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": host}), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _predict(config: PredictConfig) -> tuple[PredictReport, list[tuple]]:
    """Run predict; its report and the model's outputs per product (classes and probabilities: which are
    accepted depends on the thresholds, which push takes from the evaluation)."""
    report = predict(config)
    rows = pq.read_table(PredictionLayout(config.out_uri).predictions).to_pylist()
    return report, [(row["product_id"], row["top_classes"], row["top_probabilities"]) for row in rows]


def test_push_registers_in_postgres_and_scoring_loads_the_champion(cluster_mlflow, gcs_bucket, good_model,
                                                                   tiny_dataset, tmp_path):
    """All real (see the module docstring): PostgreSQL, the manifest's ``mlflow server`` with a GCS
    emulator bucket for artifacts, push registering the champion and predict loading it by alias."""
    server, postgres = cluster_mlflow
    experiment = f"{server.tracking_uri}/api/2.0/mlflow/experiments/get?experiment_id=0"
    assert _status(experiment, IN_CLUSTER_HOST) == 200  # the manifest's --allowed-hosts admit the cluster's clients
    assert _status(experiment, "attacker.example") == 403

    name = "ecom-product-category"
    evaluation = str(tmp_path / "evaluation")
    evaluate(EvaluateConfig(model_uri=good_model.root, data_uri=tiny_dataset.root, out_uri=evaluation))
    # Register only (the training pipeline's default): scoring then downloads the model through the server.
    report = push(PushConfig(model_uri=good_model.root, evaluation_uri=evaluation, registry_uri=server.tracking_uri,
                             out_uri=str(tmp_path / "push"), registered_model_name=name))
    assert (report.version, report.aliases) == ("1", [registry.CHALLENGER, registry.CHAMPION])

    client = registry_client(server.tracking_uri)
    champion = client.get_model_version_by_alias(name, registry.CHAMPION)
    assert (champion.version, champion.run_id) == ("1", report.run_id)
    assert client.get_run(report.run_id).info.status == "FINISHED"
    # ...kept in PostgreSQL, the model's files in the bucket
    with contextlib.closing(psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.user,
                                             dbname=postgres.database)) as db, db.cursor() as cursor:
        cursor.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s ORDER BY alias", (name,))
        assert cursor.fetchall() == [(registry.CHALLENGER, 1), (registry.CHAMPION, 1)]
        cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (report.run_id,))
        assert cursor.fetchall() == [("FINISHED",)]
    assert any(path.endswith("/saved_model.pb") for path in uri.relative_files(gcs_bucket))

    catalog = write_catalog(str(tmp_path / "catalog"), tiny.make_records(5, seed=7), faults=False)
    scored, outputs = _predict(PredictConfig(products_uri=catalog.root, model_uri=f"models:/{name}@{registry.CHAMPION}",
                                             out_uri=str(tmp_path / "by-alias"), registry_uri=server.tracking_uri,
                                             progress=False))
    assert (scored.model_kind, scored.scored) == (KIND_REGISTRY, len(catalog.product_ids))
    # the champion that came back through MLflow is the model that was pushed
    assert outputs == _predict(PredictConfig(products_uri=catalog.root, model_uri=good_model.root,
                                             out_uri=str(tmp_path / "pushed"), progress=False))[1]
