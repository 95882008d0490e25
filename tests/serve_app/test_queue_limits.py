"""The shipped queue limits: shed at the door only (inner queues hold what the ingress admits), with a
Retry-After, and an admitted count that matches the latency-target arithmetic of serve_config.yaml."""

from __future__ import annotations

from tests.serve_app.test_deploy_configs import kube_config, local_config

TARGET_P99_S = 2.0
MEASURED_RPS = 15.0  # BENCHMARKS.md: /v1/route saturation, 1 prompt/request, one machine
P99_OVER_MEAN = 2.0  # the measured p99/mean ratio under overload


def _deps(cfg):
    return {d["name"]: d for d in cfg["applications"][0]["deployments"]}


def test_inner_queues_never_shed_before_the_ingress():
    for cfg in (local_config(), kube_config()):
        deps = _deps(cfg)
        ingress = deps["Dispatcher"]
        admitted_per_caller = ingress["max_ongoing_requests"]  # each Dispatcher replica is one caller of the inner handles
        for name in ("Embedder", "Scorer"):
            assert deps[name]["max_queued_requests"] >= admitted_per_caller, name
        assert ingress["backpressure_config"] == {"status_code": 503, "retry_after_s": 1}


def test_local_ingress_admits_what_the_latency_target_allows():
    ingress = _deps(local_config())["Dispatcher"]
    assert ingress["autoscaling_config"]["max_replicas"] == 1  # a second replica would double the admitted count
    admitted = ingress["max_ongoing_requests"] + ingress["max_queued_requests"]
    budget = MEASURED_RPS * TARGET_P99_S / P99_OVER_MEAN
    assert 0.75 * budget <= admitted <= 1.25 * budget
