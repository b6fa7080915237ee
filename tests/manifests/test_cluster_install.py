"""The base install and the GKE overlay hang together: RBAC, scheduling, MLflow, network policies."""

from __future__ import annotations

from typing import Any

from .support import objects, one

#: What the train component (launcher=mpijob) does through the Kubernetes API.
TRAIN_NEEDS = {("kubeflow.org", "mpijobs"): {"create", "get", "list", "watch", "delete"},
               ("", "pods"): {"get", "list", "watch"},
               ("", "pods/log"): {"get"}}
RUNNER = "ecom-kfp-runner"


def granted(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs a Role grants."""
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def runner_roles(kustomization: str) -> list[dict[str, Any]]:
    """Roles bound to the pipeline runner's service account."""
    names = {b["roleRef"]["name"] for b in objects(kustomization, "RoleBinding")
             if any(s["kind"] == "ServiceAccount" and s["name"] == RUNNER for s in b["subjects"])}
    assert all(b["roleRef"]["kind"] == "Role" for b in objects(kustomization, "RoleBinding"))
    return [r for r in objects(kustomization, "Role") if r["metadata"]["name"] in names]


def test_runner_may_manage_mpijobs_and_read_their_pods_and_nothing_more() -> None:
    roles = runner_roles("base")
    assert roles, f"no Role is bound to {RUNNER}"
    grants: dict[tuple[str, str], set[str]] = {}
    for role in roles:
        for key, verbs in granted(role).items():
            grants.setdefault(key, set()).update(verbs)
    for key, verbs in TRAIN_NEEDS.items():
        assert verbs <= grants.get(key, set()), f"{key}: needs {sorted(verbs)}, granted {sorted(grants.get(key, []))}"
    extra = {k for k in grants if k not in TRAIN_NEEDS and k != ("kubeflow.org", "mpijobs/status")}
    assert not extra, f"more than the train component needs: {extra}"
    assert all("*" not in verbs for verbs in grants.values())
    assert not objects("base", "ClusterRole") and not objects("base", "ClusterRoleBinding")


def test_gpu_quota_and_training_priority() -> None:
    quota = one("base", "ResourceQuota", "ecom-kfp-gpus")
    assert int(quota["spec"]["hard"]["requests.nvidia.com/gpu"]) >= 16  # one 2 x 8 GPU job fits
    priority = one("base", "PriorityClass", "ecom-kfp-training")
    assert priority["globalDefault"] is False and priority["value"] > 0


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_mlflow_uses_postgres_from_a_secret_and_gcs_artifacts_with_probes() -> None:
    rendered = objects("base")
    deployment = one("base", "Deployment", "mlflow")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = " ".join(container["args"])
    # psycopg2, the driver the image has: a bare postgresql:// means psycopg 3 to SQLAlchemy 2.1.
    assert "--backend-store-uri=postgresql+psycopg2://$(DB_USER):$(DB_PASSWORD)@$(DB_HOST):5432/" in args
    assert "--artifacts-destination=$(MLFLOW_ARTIFACTS_DESTINATION)" in args and "--serve-artifacts" in args
    env = env_of(container)
    for name in ("DB_USER", "DB_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-db"
    # No job runner and huey consumers for GenAI jobs, which tracking and the registry never use.
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    # Every $(VAR) in the arguments is defined, or the kubelet would pass it through literally.
    for var in ("DB_USER", "DB_PASSWORD", "DB_HOST", "MLFLOW_ARTIFACTS_DESTINATION"):
        assert var in env
    ref = env["MLFLOW_ARTIFACTS_DESTINATION"]["valueFrom"]["configMapKeyRef"]
    configmap = next(o for o in rendered if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref["name"])
    assert configmap["data"][ref["key"]].startswith("gs://")
    services = {s["metadata"]["name"]: s for s in objects("base", "Service")}
    assert env["DB_HOST"]["value"] in services
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_postgres_is_pinned_persistent_and_non_root() -> None:
    statefulset = one("base", "StatefulSet", "mlflow-postgres")
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] in {
        m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert env_of(pod["containers"][0])["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-db"


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a matchLabels-only label selector selects ``labels``."""
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are used here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def policies_selecting(labels: dict[str, str]) -> list[dict[str, Any]]:
    return [p for p in objects("base", "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


def admitted_from(labels: dict[str, str], peer_labels: dict[str, str], port: int) -> bool:
    """Whether a pod labelled ``peer_labels`` in the same namespace may reach ``port`` of pods
    labelled ``labels`` (matchLabels peers only; namespace-selector peers are other namespaces)."""
    for policy in policies_selecting(labels):
        for rule in policy["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            if ports and port not in ports:
                continue
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer and selects(peer["podSelector"], peer_labels):
                    return True
    return False


def test_network_policies_deny_by_default_and_admit_only_pipeline_pods_to_mlflow() -> None:
    mlflow = one("base", "Deployment", "mlflow")["spec"]["template"]["metadata"]["labels"]
    postgres = one("base", "StatefulSet", "mlflow-postgres")["spec"]["template"]["metadata"]["labels"]
    kfp_task = {"pipelines.kubeflow.org/v2_component": "true"}
    mpi_pod = {"training.kubeflow.org/operator-name": "mpi-operator", "training.kubeflow.org/job-role": "worker"}
    stranger = {"app": "something-else"}
    deny = [p for p in objects("base", "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert deny and deny[0]["spec"]["policyTypes"] == ["Ingress"] and not deny[0]["spec"].get("ingress")
    assert admitted_from(mlflow, kfp_task, 5000) and admitted_from(mlflow, mpi_pod, 5000)
    assert not admitted_from(mlflow, stranger, 5000)
    assert admitted_from(postgres, mlflow, 5432)
    assert not admitted_from(postgres, kfp_task, 5432) and not admitted_from(postgres, stranger, 5432)
    assert admitted_from(mpi_pod, mpi_pod, 2222) and not admitted_from(mpi_pod, stranger, 2222)


def test_gke_overlay_sets_workload_identity_and_the_bucket() -> None:
    params = next(o for o in objects("overlays/gke-gpu", "ConfigMap")
                  if o["metadata"]["name"].startswith("ecom-kfp-params"))
    gsa = params["data"]["gcp-service-account"]
    assert gsa.endswith(".iam.gserviceaccount.com")
    for account in objects("overlays/gke-gpu", "ServiceAccount"):
        assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == gsa
    base_params = next(o for o in objects("base", "ConfigMap") if o["metadata"]["name"].startswith("ecom-kfp-params"))
    destination = params["data"]["mlflow-artifacts-destination"]
    assert destination.startswith("gs://") and destination != base_params["data"]["mlflow-artifacts-destination"]
    # The Deployment follows the merged ConfigMap's new (hashed) name.
    (container,) = one("overlays/gke-gpu", "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["MLFLOW_ARTIFACTS_DESTINATION"]["valueFrom"]["configMapKeyRef"]["name"] == params["metadata"]["name"]
