"""Fault runs against a running service: replica kills, misbehaving backends, overload.

Each function takes a deployed :class:`load_tests.cluster.Service`, runs a bounded load with the
generator, injects the fault, and returns one result dict (the suite prints and saves them; the CI
smoke tests assert on them):

- :func:`kill_during_load`: ``ray.kill`` one Embedder or Scorer replica mid-run. Reports the
  requests that failed (and with which status), the seconds until Serve had a replacement replica
  RUNNING, and how long requests were disrupted (failed or held) after the kill.
- :func:`backend_faults`: the stand-in backend (a test double) fails, hangs or is slow for the
  model the router picks most, then for every model. The dispatcher must fall back, and no request
  may outlive its deadline (``max_attempts × backend_timeout_s`` plus routing).
- :func:`kill_controller_during_load`: ``ray.kill`` the Serve controller (a detached actor Ray
  restarts) mid-run: requests must keep being answered by the running replicas.
- :func:`overload`: open-loop traffic far above capacity. With ``max_queued_requests`` set on the
  ingress the service answers 503 quickly instead of letting latency grow without bound;
  :func:`overload_report` checks the accepted p99 against a target and how fast the 503s came.
"""

from __future__ import annotations

import threading
import time
from typing import Sequence

from load_tests import cluster
from load_tests.generator import LoadConfig, LoadResult, run_load


class _Background:
    """Run one load in a thread; ``join()`` returns its result."""

    def __init__(self, config: LoadConfig, prompts: Sequence[str]):
        self.result: LoadResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(config, prompts), daemon=True)
        self._thread.start()

    def _run(self, config, prompts):
        try:
            self.result = run_load(config, prompts)
        except BaseException as exc:  # noqa: BLE001 - re-raised in join
            self.error = exc

    def join(self, timeout: float | None = None) -> LoadResult:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("load thread did not finish in time")
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def kill_during_load(service: cluster.Service, deployment: str, load: LoadConfig, prompts: Sequence[str],
                     kill_after_s: float = 3.0, replace_timeout_s: float = 120.0) -> dict:
    """Kill one replica of ``deployment`` ``kill_after_s`` into a closed-loop run (records kept)."""
    if deployment not in cluster.DEPLOYMENTS:
        raise ValueError(f"deployment must be one of {cluster.DEPLOYMENTS}")
    load = load.model_copy(update={"keep_records": True})
    before = cluster.replica_actor_names(service.app_name, deployment)
    n_before = len(before)
    bg = _Background(load, prompts)
    time.sleep(kill_after_s)
    killed = cluster.kill_replica(service.app_name, deployment)
    t_kill = time.time()
    replaced_s = None
    deadline = time.monotonic() + replace_timeout_s
    while time.monotonic() < deadline:
        alive = [n for n in cluster.replica_actor_names(service.app_name, deployment) if n != killed]
        states = cluster.replica_states(service.app_name).get(deployment, {})
        running = states.get("RUNNING", 0)
        # The dead replica may still be listed RUNNING until the controller's health check notices.
        if len(alive) >= n_before and running >= n_before and sum(states.values()) == running:
            replaced_s = time.time() - t_kill
            break
        time.sleep(0.25)
    result = bg.join(load.duration_s + load.timeout_s + 60)
    return _kill_report(result, load, deployment, killed, n_before, t_kill - result.started_at, replaced_s)


CONTROLLER = "SERVE_CONTROLLER_ACTOR"


def kill_controller_during_load(service: cluster.Service, load: LoadConfig, prompts: Sequence[str], kill_after_s: float = 3.0,
                                recover_timeout_s: float = 120.0) -> dict:
    """Kill the Serve controller ``kill_after_s`` into a closed-loop run; Ray restarts it (it is a
    detached actor with unlimited restarts) and it recovers its state from the GCS."""
    import ray

    load = load.model_copy(update={"keep_records": True})
    bg = _Background(load, prompts)
    time.sleep(kill_after_s)
    ray.kill(ray.get_actor(CONTROLLER, namespace="serve"), no_restart=False)
    t_kill = time.time()
    recovered_s = None
    deadline = time.monotonic() + recover_timeout_s
    while time.monotonic() < deadline:
        try:
            if cluster.running_replicas(service.app_name):
                recovered_s = time.time() - t_kill
                break
        except Exception:  # noqa: BLE001 - the controller is restarting
            pass
        time.sleep(0.25)
    result = bg.join(load.duration_s + load.timeout_s + 60)
    report = _kill_report(result, load, "controller", CONTROLLER, 1, t_kill - result.started_at, recovered_s)
    report["kind"] = "kill_controller"
    return report


def _kill_report(result: LoadResult, load: LoadConfig, deployment: str, killed: str, n_before: int, kill_at: float,
                 replaced_s: float | None) -> dict:
    """Failures and disruption around a kill at ``kill_at`` seconds into the run.

    A request is *affected* when it failed, or when it ended after the kill and took longer than
    ``slow_ms`` (3 × the p95 before the kill, at least 500 ms): Serve may hold requests for a dead
    replica until the replacement is up rather than fail them. ``disruption_s`` runs from the kill to
    the end of the last affected request."""
    import numpy as np

    records = result.records or []
    before = [r["latency"] for r in records if r["start"] + r["latency"] < kill_at and r["status"].startswith("2")]
    slow_s = max(3 * float(np.percentile(before, 95)), 0.5) if before else 0.5
    failed = [r for r in records if not r["status"].startswith("2")]
    affected = [r for r in records if r["start"] + r["latency"] >= kill_at
                and (not r["status"].startswith("2") or r["latency"] > slow_s)]
    statuses: dict[str, int] = {}
    for r in failed:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    in_flight_at_kill = sum(1 for r in records if r["start"] <= kill_at < r["start"] + r["latency"])
    return {
        "kind": "kill_replica",
        "deployment": deployment,
        "killed": killed,
        "replicas": n_before,
        "concurrency": load.concurrency,
        "kill_at_s": kill_at,
        "sent": result.sent,
        "ok": result.ok,
        "failed": len(failed),
        "failed_by_status": statuses,
        "in_flight_at_kill": in_flight_at_kill,
        # The goal: nothing lost beyond the requests in flight when the replica died.
        "failed_within_in_flight": len(failed) <= in_flight_at_kill,
        "replacement_running_s": replaced_s,
        "slow_threshold_ms": slow_s * 1000,
        "affected": len(affected),
        "disruption_s": max((r["start"] + r["latency"] - kill_at for r in affected), default=0.0),
        "max_latency_ms": result.latency_all_ms["max"],
        "latency_ms": result.latency_ms,
        "throughput_rps": result.throughput_rps,
    }


def set_stub(stub, fail: dict | None = None, delay_ms: dict | None = None, default_delay_ms: float = 0.0) -> None:
    """Tell the in-process stand-in backend (``serve_app.testing.stub_backend.StubBackend``) how to misbehave."""
    b = stub.behaviour
    b.fail = dict(fail or {})
    b.delay_ms = dict(delay_ms or {})
    b.default_delay_ms = float(default_delay_ms)


def backend_faults(service: cluster.Service, stub, pool: Sequence[str], prompts: Sequence[str], backend_timeout_s: float,
                   max_attempts: int, requests: int = 24, concurrency: int = 4, hang_s: float = 30.0) -> list[dict]:
    """Chat traffic while the stand-in backend errors, hangs or is slow (see the module docstring)."""
    base = LoadConfig(url=service.url, endpoint="chat", concurrency=concurrency, max_requests=requests, duration_s=120,
                      timeout_s=max_attempts * backend_timeout_s + 30, lam=0.5)
    rows = []

    def run(name: str, expect: str, **behaviour) -> LoadResult:
        set_stub(stub, **behaviour)
        t0 = time.perf_counter()
        res = run_load(base, prompts)
        rows.append({
            "scenario": name, "expect": expect, "sent": res.sent, "ok": res.ok, "fallbacks": res.fallbacks,
            "errors": res.errors, "p50_ms": res.latency_all_ms["p50"], "max_ms": res.latency_all_ms["max"],
            "deadline_ms": deadline_ms, "within_deadline": (res.latency_all_ms["max"] or 0) <= deadline_ms,
            "models": res.models, "wall_s": time.perf_counter() - t0,
        })
        return res

    # Routing plus one answer; a generous 5 s for routing under a loaded 2-core machine.
    deadline_ms = (max_attempts * backend_timeout_s + 5.0) * 1000
    healthy = run("healthy", "all 200, no fallback")
    top = max(healthy.models, key=healthy.models.get) if healthy.models else pool[0]
    others = [m for m in pool if m != top]
    run(f"errors: {top} answers 500", "all 200 via fallback", fail={top: 500})
    run(f"hang: {top} never answers in time", "all 200 via fallback after one timeout", delay_ms={top: hang_s * 1000})
    run(f"slow: {top} +300 ms", "all 200, no fallback, slower", delay_ms={top: 300})
    run("errors: every backend answers 503", "all 502 (pool exhausted), fast", fail={m: 503 for m in pool})
    run("hang: every backend", "all 502 within max_attempts x timeout", default_delay_ms=hang_s * 1000)
    set_stub(stub)
    for row in rows:
        row["top_model"] = top
        row["other_models"] = len(others)
    return rows


def overload(service: cluster.Service, prompts: Sequence[str], rate: float, duration_s: float = 10.0,
             timeout_s: float = 30.0, endpoint: str = "route") -> dict:
    """Open-loop traffic at ``rate`` (well above capacity): what comes back, and how fast."""
    config = LoadConfig(url=service.url, endpoint=endpoint, mode="open", rate=rate, max_requests=int(rate * duration_s * 2),
                        duration_s=duration_s, timeout_s=timeout_s, max_in_flight=4096)
    res = run_load(config.model_copy(update={"keep_records": True}), prompts)
    shed = res.errors.get("503", 0)
    return {
        "kind": "overload", "offered_rps": rate, "sent": res.sent, "ok": res.ok, "shed_503": shed,
        "errors": res.errors, "throughput_rps": res.throughput_rps,
        "ok_latency_ms": res.latency_ms, "all_latency_ms": res.latency_all_ms,
        "shed_latency_ms": _percentiles([r["latency"] * 1000 for r in res.records or [] if r["status"] == "503"]),
        "unanswered": sum(1 for r in res.records or [] if not r["status"].isdigit()),
    }


def _percentiles(values: list[float]) -> dict:
    import numpy as np

    if not values:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max()), "n": int(a.size)}


def overload_report(res: dict, target_p99_ms: float, shed_within_ms: float = 50.0) -> dict:
    """The overload goals: accepted p99 within the target, every other answer a 503 within
    ``shed_within_ms`` (p99 of the 503s), none without an answer (timeouts, dropped connections)."""
    other = {k: v for k, v in res["errors"].items() if k != "503"}
    ok_p99 = res["ok_latency_ms"].get("p99")
    shed_p99 = res["shed_latency_ms"]["p99"]
    return {
        "accepted_p99_ms": ok_p99, "target_p99_ms": target_p99_ms,
        "accepted_within_target": ok_p99 is not None and ok_p99 <= target_p99_ms,
        "shed_p99_ms": shed_p99, "shed_max_ms": res["shed_latency_ms"]["max"],
        "shed_within_ms": shed_within_ms, "shed_fast": shed_p99 is None or shed_p99 <= shed_within_ms,
        "other_errors": other, "unanswered": res["unanswered"], "none_lost": not other and res["unanswered"] == 0,
    }
