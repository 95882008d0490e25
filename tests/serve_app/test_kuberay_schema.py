"""deploy/kuberay/rayservice.yaml against the RayService schema, and the reliability settings it must
keep: GCS fault tolerance on an external Redis, a GPU worker group sized for the Embedder, readiness
on /healthz.

The schema is a hand-written subset of KubeRay's ray.io/v1 RayService (see its ``$comment``): the
generated CRD available when this was written predated ``gcsFaultToleranceOptions`` and
``authOptions``, so it could not check them. To check against the full, current CRD as well, save
KubeRay's ``ray-operator/config/crd/bases/ray.io_rayservices.yaml`` (Apache-2.0) as
``tests/serve_app/schemas/ray.io_rayservices.yaml``; the second test then uses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.serve_app.test_deploy_configs import kube_config, kube_docs

SCHEMAS = Path(__file__).parent / "schemas"


def service() -> dict:
    (svc,) = [d for d in kube_docs() if d["kind"] == "RayService"]
    return svc


def test_manifest_matches_the_rayservice_schema():
    schema = json.loads((SCHEMAS / "rayservice-subset.schema.json").read_text())
    jsonschema.validate(service(), schema)


def test_the_schema_refuses_what_kubernetes_would():
    """The subset is strict where it claims to be: a misspelt field, a number where a string goes."""
    schema = json.loads((SCHEMAS / "rayservice-subset.schema.json").read_text())
    bad = service()
    bad["spec"]["rayClusterConfig"]["gcsFaultTolerenceOptions"] = bad["spec"]["rayClusterConfig"].pop("gcsFaultToleranceOptions")
    with pytest.raises(jsonschema.ValidationError, match="gcsFaultTolerenceOptions"):
        jsonschema.validate(bad, schema)
    bad = service()
    bad["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_manifest_matches_the_full_crd_if_vendored():
    crd_path = SCHEMAS / "ray.io_rayservices.yaml"
    if not crd_path.exists():
        pytest.skip("the full KubeRay CRD is not vendored (see the module docstring)")
    crd = yaml.safe_load(crd_path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    jsonschema.validate(service(), version["schema"]["openAPIV3Schema"])


def test_gcs_fault_tolerance_uses_an_external_redis_with_a_secret_password():
    ft = service()["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]
    assert ft["redisAddress"].startswith("redis://")
    assert "value" not in ft["redisPassword"]  # never a password in the manifest
    assert ft["redisPassword"]["valueFrom"]["secretKeyRef"]["key"] == "password"


def test_worker_groups_are_ready_only_when_the_router_answers():
    rc = service()["spec"]["rayClusterConfig"]
    port = kube_config()["http_options"]["port"]
    for group in rc["workerGroupSpecs"]:
        (container,) = group["template"]["spec"]["containers"]
        probe = container["readinessProbe"]["httpGet"]
        assert (probe["path"], probe["port"]) == ("/healthz", port), group["groupName"]


def test_gpu_group_fits_the_embedders_replicas():
    rc = service()["spec"]["rayClusterConfig"]
    (gpu,) = [g for g in rc["workerGroupSpecs"] if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]]
    res = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    gpus_per_pod, cpus_per_pod = int(res["nvidia.com/gpu"]), float(res["cpu"])
    deps = {d["name"]: d for d in kube_config()["applications"][0]["deployments"]}
    emb = deps["Embedder"]
    opts, most = emb["ray_actor_options"], emb["autoscaling_config"]["max_replicas"]
    assert opts["num_gpus"] > 0
    per_pod = min(gpus_per_pod / opts["num_gpus"], cpus_per_pod / opts["num_cpus"])
    assert per_pod * gpu["maxReplicas"] >= most  # the Embedder can reach max_replicas
    assert gpu["minReplicas"] >= 1 and emb["autoscaling_config"]["min_replicas"] <= per_pod * gpu["minReplicas"]
    for name in ("Scorer", "Dispatcher"):  # the rest stays on CPU workers
        assert not deps[name]["ray_actor_options"].get("num_gpus")
