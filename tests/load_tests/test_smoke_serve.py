"""CI smoke version of the load and fault runs, on the real Serve app with the hash:64 encoder.

One deployment for the module on the session's 2-CPU Ray (``ray_session``), on a free loopback
port: a tiny artifact trained here, the stand-in backend (a test double) as every model's LLM,
fast health checks (so a killed replica is noticed in about a second) and a small ingress queue
(``max_ongoing_requests=8``, ``max_queued_requests=4``) so overload is reachable in two seconds.
Serve is shut down at the end if this module started it (the serve tests start their own).
The full-size runs are ``python -m load_tests.suite`` (BENCHMARKS.md).
"""

from __future__ import annotations

import pytest
import yaml

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "router-load-smoke"
BACKEND_TIMEOUT_S = 1.0
MAX_ATTEMPTS = 2
PROMPTS = [f"{dom} question {i}: {words}" for i in range(30) for dom, words in
           (("math", "integral prove theorem matrix"), ("code", "python function bug loop"), ("chat", "hello coffee holiday"))]


@pytest.fixture(scope="module")
def service(ray_session, stub, tmp_path_factory):
    from ray import serve

    from load_tests import cluster
    from load_tests.artifacts import build_artifact
    from router.model.artifact import load_artifact

    tmp = tmp_path_factory.mktemp("load-smoke")
    artifact = build_artifact(tmp / "artifact", "hash", epochs=1, n_rows=150)
    pool = list(load_artifact(artifact).models)
    backends = tmp / "backends.yaml"
    backends.write_text(yaml.safe_dump({"backends": [{"model": m, "base_url": f"http://127.0.0.1:{stub.port}/v1"} for m in pool]}))
    args = {"artifact_path": str(artifact), "backends_file": str(backends), "embedder_threads": 1,
            "backend_timeout_s": BACKEND_TIMEOUT_S, "max_attempts": MAX_ATTEMPTS, "auth": "off",
            "embedder_batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.01}}
    fast_health = {"health_check_period_s": 1.0, "health_check_timeout_s": 5.0}
    options = {
        "Embedder": {"num_replicas": 1, **fast_health},
        "Scorer": {"num_replicas": 1, **fast_health},
        "Dispatcher": {"num_replicas": 1, "max_ongoing_requests": 8, "max_queued_requests": 4},
    }
    was_running = cluster.serve_running()
    svc = cluster.deploy(args, options, app_name=APP)
    svc.pool = pool
    yield svc
    cluster.undeploy(APP)
    if not was_running:
        serve.shutdown()


def test_closed_open_and_chat_load(service):
    from load_tests.generator import LoadConfig, run_load

    closed = run_load(LoadConfig(url=service.url, concurrency=4, max_requests=40, duration_s=30), PROMPTS)
    assert closed.ok == closed.sent == 40 and closed.errors == {}
    assert closed.latency_ms["p50"] > 0 and closed.throughput_rps > 0
    batched = run_load(LoadConfig(url=service.url, concurrency=2, max_requests=6, prompts_per_request=8), PROMPTS)
    assert batched.ok == 6 and batched.prompts_per_s == pytest.approx(8 * batched.throughput_rps)
    opened = run_load(LoadConfig(url=service.url, mode="open", rate=10, max_requests=100, duration_s=2.0, seed=3), PROMPTS)
    assert opened.sent >= 5 and opened.ok == opened.sent
    chat = run_load(LoadConfig(url=service.url, endpoint="chat", concurrency=2, max_requests=6), PROMPTS)
    assert chat.ok == 6 and sum(chat.models.values()) == 6 and set(chat.models) <= set(service.pool)


def test_backend_faults_fall_back_and_respect_deadlines(service, stub):
    from load_tests.faults import backend_faults

    rows = {r["scenario"].split(":")[0] + ("-all" if "every" in r["scenario"] else ""): r
            for r in backend_faults(service, stub, service.pool, PROMPTS, BACKEND_TIMEOUT_S, MAX_ATTEMPTS,
                                    requests=4, concurrency=4, hang_s=10)}
    healthy = rows["healthy"]
    assert healthy["ok"] == 4 and healthy["fallbacks"] == 0
    assert rows["errors"]["ok"] == 4 and rows["errors"]["fallbacks"] >= 1
    assert rows["hang"]["ok"] == 4 and rows["hang"]["fallbacks"] >= 1
    assert rows["slow"]["ok"] == 4 and rows["slow"]["fallbacks"] == 0 and rows["slow"]["p50_ms"] >= 300
    assert rows["errors-all"]["errors"] == {"502": 4}
    assert rows["hang-all"]["errors"] == {"502": 4}
    # Nothing outlives max_attempts x backend timeout (+ routing slack): the hung backends cost ~2 s, not 10.
    assert all(r["within_deadline"] for r in rows.values())
    assert rows["hang-all"]["max_ms"] >= MAX_ATTEMPTS * BACKEND_TIMEOUT_S * 1000 * 0.9


def test_overload_is_shed_with_503(service):
    from load_tests.faults import overload

    res = overload(service, PROMPTS, rate=300, duration_s=2.0, timeout_s=30)
    assert res["shed_503"] > 0, res
    assert res["ok"] > 0
    assert set(res["errors"]) <= {"503"}, res["errors"]
    # Shed requests are answered at once, and admitted ones never wait behind an unbounded queue.
    assert res["all_latency_ms"]["max"] < 15_000


def test_killed_embedder_replica_is_replaced(service):
    from load_tests import cluster
    from load_tests.faults import kill_during_load
    from load_tests.generator import LoadConfig

    # The client waits as long as the app's deadline (60 s): a request that outlasts a slow
    # replacement (tens of seconds on a loaded machine) is late, not lost.
    load = LoadConfig(url=service.url, concurrency=4, max_requests=100_000, duration_s=8.0, timeout_s=90)
    res = kill_during_load(service, "Embedder", load, PROMPTS, kill_after_s=2.0, replace_timeout_s=60)
    assert res["replacement_running_s"] is not None, res
    assert res["killed"] not in cluster.replica_actor_names(APP, "Embedder")
    # None lost: the Dispatcher retries the in-flight calls on the replacement (serve_app.retry).
    why = {k: res.get(k) for k in ("failed", "failed_by_status", "in_flight_at_kill", "replacement_running_s", "max_latency_ms")}
    assert res["failed"] == 0, why
    assert res["ok"] > 0
    cluster.wait_healthy(service.url, 30)


def test_fuzzing_gives_no_5xx(service):
    from load_tests.fuzz import run_fuzz

    res = run_fuzz(service.url, examples=40, seed=1)
    assert res["cases"] > 40
    assert res["healthz_after"] == "200"
    assert res["problems"] == [], res["problems"][:5]
