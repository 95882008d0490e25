"""deploy/: the local Serve config and the KubeRay RayService describe the same application, both
pass Serve's own schema and ours, and the local one fits on 2 CPUs at its maximum replica counts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from serve_app.config import AppArgs, load_backends

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "serve_config.yaml"
KUBE = ROOT / "deploy" / "kuberay" / "rayservice.yaml"
# What may differ between one machine and a cluster: where files are, how much hardware, and who
# may call (the local demo runs with auth off; the cluster requires caller keys).
PATH_ARGS = ("artifact_path", "backends_file", "auth", "keys_file", "ledger_url", "ledger_url_env")
RESOURCE_KEYS = ("ray_actor_options",)
REPLICA_BOUNDS = ("min_replicas", "max_replicas", "initial_replicas")


def local_config() -> dict:
    return yaml.safe_load(LOCAL.read_text())


def kube_docs() -> list[dict]:
    return list(yaml.safe_load_all(KUBE.read_text()))


def kube_config() -> dict:
    (service,) = [d for d in kube_docs() if d["kind"] == "RayService"]
    return yaml.safe_load(service["spec"]["serveConfigV2"])


def comparable(app: dict) -> dict:
    app = copy.deepcopy(app)
    for key in PATH_ARGS:
        app["args"].pop(key, None)
    for dep in app["deployments"]:
        for key in RESOURCE_KEYS:
            dep.pop(key, None)
        for key in REPLICA_BOUNDS:
            dep.get("autoscaling_config", {}).pop(key, None)
    return app


def test_both_configs_pass_serves_schema():
    from ray.serve.schema import ServeDeploySchema

    for cfg in (local_config(), kube_config()):
        schema = ServeDeploySchema.model_validate(cfg)
        assert [a.name for a in schema.applications] == ["router"]


def test_kuberay_serves_the_same_application():
    (local,) = local_config()["applications"]
    (kube,) = kube_config()["applications"]
    assert comparable(local) == comparable(kube)
    assert local["import_path"] == "serve_app.app:build_app"


def test_app_args_validate():
    for cfg in (local_config(), kube_config()):
        args = AppArgs.model_validate(cfg["applications"][0]["args"])
        assert args.embedder_batching.max_batch_size >= 1


def test_local_config_fits_two_cpus_at_max_replicas_and_listens_on_loopback():
    cfg = local_config()
    assert cfg["http_options"]["host"] == "127.0.0.1"
    deps = cfg["applications"][0]["deployments"]
    assert {d["name"] for d in deps} == {"Embedder", "Scorer", "Dispatcher"}
    total = sum(d["ray_actor_options"]["num_cpus"] * d["autoscaling_config"]["max_replicas"] for d in deps)
    assert total <= 2.0
    for d in deps:
        a = d["autoscaling_config"]
        assert 1 <= a["min_replicas"] <= a["max_replicas"]
        assert d["max_queued_requests"] >= d["max_ongoing_requests"]


def test_kuberay_keeps_token_auth_on():
    (service,) = [d for d in kube_docs() if d["kind"] == "RayService"]
    assert service["spec"]["rayClusterConfig"]["authOptions"] == {"mode": "token"}
    rc = service["spec"]["rayClusterConfig"]
    groups = [rc["headGroupSpec"], *rc["workerGroupSpecs"]]
    envs = [e for g in groups for c in g["template"]["spec"]["containers"] for e in c.get("env", [])]
    assert envs and not [e for e in envs if e["name"] == "RAY_AUTH_MODE"]  # nobody turns it off


@pytest.mark.parametrize("path", ["deploy/backends.yaml", "deploy/backends.providers.example.yaml"])
def test_backends_files_validate(path):
    backends = load_backends(ROOT / path)
    assert backends.backends


def test_kuberay_backends_configmap_validates(tmp_path):
    (cm,) = [d for d in kube_docs() if d["kind"] == "ConfigMap"]
    path = tmp_path / "backends.yaml"
    path.write_text(cm["data"]["backends.yaml"])
    assert {b.api_key_env for b in load_backends(path).backends} == {"PROVIDER_API_KEY"}


def test_local_demo_backends_cover_the_dcrouter_pool_and_stay_on_loopback():
    from router.data.io import load_table

    backends = load_backends(ROOT / "deploy" / "backends.yaml").backends
    assert {b.model for b in backends} == set(load_table("dcrouter").models)
    assert all(b.base_url.startswith("http://127.0.0.1:") for b in backends)


GPU = ROOT / "deploy" / "serve_config.gpu.yaml"
# What the GPU profile may change: resources, replica counts, queue limits, batch sizes.
GPU_ARGS = ("embedder_batching", "scorer_batching")
GPU_DEPLOYMENT_KEYS = ("ray_actor_options", "max_ongoing_requests", "max_queued_requests")
GPU_AUTOSCALING_KEYS = ("min_replicas", "max_replicas", "initial_replicas", "target_ongoing_requests")


def without_gpu_changes(app: dict) -> dict:
    app = copy.deepcopy(app)
    for key in GPU_ARGS:
        app["args"].pop(key, None)
    for dep in app["deployments"]:
        for key in GPU_DEPLOYMENT_KEYS:
            dep.pop(key, None)
        for key in GPU_AUTOSCALING_KEYS:
            dep.get("autoscaling_config", {}).pop(key, None)
    return app


def test_gpu_config_parses_and_agrees_with_the_cpu_one():
    from ray.serve.schema import ServeDeploySchema

    gpu = yaml.safe_load(GPU.read_text())
    ServeDeploySchema.model_validate(gpu)
    (app,) = gpu["applications"]
    args = AppArgs.model_validate(app["args"])
    (local,) = local_config()["applications"]
    assert without_gpu_changes(app) == without_gpu_changes(local)
    assert {k: v for k, v in gpu.items() if k != "applications"} == {k: v for k, v in local_config().items() if k != "applications"}
    deps = {d["name"]: d for d in app["deployments"]}
    assert deps["Embedder"]["ray_actor_options"]["num_gpus"] >= 1
    assert all("num_gpus" not in d["ray_actor_options"] for n, d in deps.items() if n != "Embedder")
    # A GPU wants larger batches than the CPU profile, and the next batch tokenised while one runs.
    cpu_args = AppArgs.model_validate(local["args"])
    assert args.embedder_batching.max_batch_size > cpu_args.embedder_batching.max_batch_size
    assert args.embedder_batching.max_concurrent_batches >= 2
    assert args.embedder_batching.batch_wait_timeout_s == 0.0
    for d in deps.values():
        assert d["max_queued_requests"] >= d["max_ongoing_requests"]


def test_local_config_runs_no_more_torch_threads_than_cpus():
    from load_tests.cluster import config_deployment_options, torch_thread_plan

    cfg = local_config()
    args = cfg["applications"][0]["args"]
    plan = torch_thread_plan(config_deployment_options(LOCAL), args, cpus=2)
    assert plan["within_cpus"], plan["line"]
    assert plan["Embedder"]["threads_each"] == 1 and plan["Scorer"]["threads_each"] == 1


COLOCATED = ROOT / "deploy" / "serve_config.colocated.yaml"


def test_colocated_config_is_the_same_app_in_one_deployment():
    from ray.serve.schema import ServeDeploySchema

    from load_tests.cluster import config_deployment_options, torch_thread_plan

    cfg = yaml.safe_load(COLOCATED.read_text())
    ServeDeploySchema.model_validate(cfg)
    (app,) = cfg["applications"]
    (local,) = local_config()["applications"]
    assert AppArgs.model_validate(app["args"]).layout == "colocated"
    assert {k: v for k, v in app["args"].items() if k != "layout"} == local["args"]
    assert {k: v for k, v in cfg.items() if k != "applications"} == {k: v for k, v in local_config().items() if k != "applications"}
    (dep,) = app["deployments"]
    assert dep["name"] == "Dispatcher"
    # The ingress keeps the shipped queue limits; its torch threads (both stages) fit the CPUs.
    local_dispatcher = {d["name"]: d for d in local["deployments"]}["Dispatcher"]
    for key in ("max_ongoing_requests", "max_queued_requests", "backpressure_config"):
        assert dep[key] == local_dispatcher[key]
    plan = torch_thread_plan(config_deployment_options(COLOCATED), app["args"], cpus=2)
    assert plan["within_cpus"] and plan["Dispatcher"]["threads_each"] == 2, plan["line"]
