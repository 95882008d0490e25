"""A/B of the Serve path's own cost: a model-free ``hash:<dim>`` router (dcrouter's 9 models) served
by the code on ``PYTHONPATH``, concurrency-1 latency, closed-loop saturation and CPU milliseconds per
request in each Serve process, for several variants, interleaved (variant A, B, A, B...) so that a
busy machine's load hits every variant alike.

    python load_tests/bench_hops.py --variants '[{"name": "default"}]' --out results/hops.json

Run it as a script path (not ``-m``) to measure another checkout's serving code with this harness:
``PYTHONPATH=<old checkout> python <this checkout>/load_tests/bench_hops.py ...``; the CPU reading
comes from this file's ``cluster.py`` either way. A variant is ``{"name", "args": {app args},
"options": {deployment: {Serve options}}}``, or ``{"name", "floor": true}``: a FastAPI ingress with
no router at all that answers /v1/route with a fixed body (what Serve's proxy and one replica hop
cost on this machine, the floor under any layout). Set ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` in the
environment to measure Ray Serve's fast path, and ``RAY_SERVE_ENABLE_HA_PROXY=1`` as well for its
HAProxy ingress (Ray reads both when it starts).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _own_cluster():
    spec = importlib.util.spec_from_file_location("bench_hops_cluster", HERE / "cluster.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_hops_cluster"] = mod
    spec.loader.exec_module(mod)
    return mod


def build_artifact(path: Path, dim: int) -> Path:
    from router.core import Router
    from router.data import load_table
    from router.embeddings.hashing import HashingEncoder
    from router.model.config import TrainConfig

    table = load_table("dcrouter")
    router = Router.untrained(TrainConfig(max_epochs=1, patience=1, seed=0), HashingEncoder(dim))
    return router.fit(router.embed(table.prompts), table.quality, table.cost, list(table.models), prompts=table.prompts).save(path)


def deploy_floor(cluster, app_name: str):
    """One replica of a do-nothing ingress (same proxy, same HTTP client): Serve's own floor."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from ray import serve

    app = FastAPI()

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/v1/route")
    async def route():
        return JSONResponse({"decisions": [{"model": "floor"}]})

    @serve.deployment(name="Dispatcher", ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=256,
                      logging_config={"enable_access_log": False, "log_level": "WARNING"})
    @serve.ingress(app)
    class Floor:
        pass

    port = cluster.ensure_serve(None)
    serve.run(Floor.bind(), name=app_name, route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{port}"
    cluster.wait_healthy(url)
    return cluster.Service(url=url, app_name=app_name, port=port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default='[{"name": "default"}]', help="JSON list of variants (see the module docstring)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dim", type=int, default=384, help="hash encoder width (384 = all-MiniLM-L6-v2's)")
    p.add_argument("--mix", default="routellm", help="bundled table the prompts come from")
    p.add_argument("--c1-requests", type=int, default=100)
    p.add_argument("--saturation-s", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--out", help="JSON output path")
    args = p.parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    variants = json.loads(args.variants)
    import ray

    from load_tests import cluster
    from load_tests.generator import LoadConfig, load_prompts, run_load

    cpu = _own_cluster()
    work = Path(tempfile.mkdtemp(prefix="bench-hops-"))
    artifact = build_artifact(work / "artifact", args.dim)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=256 * 1024**2)
    prompts = load_prompts(args.mix, seed=0)
    base = {d: {"num_replicas": 1, "logging_config": {"enable_access_log": False, "log_level": "WARNING"}} for d in cluster.DEPLOYMENTS}
    base["Dispatcher"].update(max_ongoing_requests=256, max_queued_requests=1024)
    results: dict[str, list] = {v["name"]: [] for v in variants}
    try:
        for rep in range(args.repeats):
            for v in variants:
                if v.get("floor"):
                    svc = deploy_floor(cluster, "hops")
                else:
                    opts = cluster.merge_options(base, v.get("options"))
                    svc = cluster.deploy({"artifact_path": str(artifact), "auth": "off", **v.get("args", {})}, opts, app_name="hops")
                cluster.wait_healthy_deployments("hops")
                run_load(LoadConfig(url=svc.url, concurrency=4, max_requests=40, duration_s=20), prompts)  # warm every hop
                c1 = run_load(LoadConfig(url=svc.url, concurrency=1, max_requests=args.c1_requests, duration_s=60), prompts)
                before = cpu.serve_cpu_seconds()
                sat = run_load(LoadConfig(url=svc.url, concurrency=args.concurrency, max_requests=10**6, duration_s=args.saturation_s), prompts)
                ms = cpu.cpu_ms_per_request(before, cpu.serve_cpu_seconds(), sat.ok)
                row = {"repeat": rep, "c1_p50_ms": c1.latency_ms["p50"], "c1_p95_ms": c1.latency_ms["p95"], "saturation_req_per_s": sat.throughput_rps,
                       "errors": sat.errors, "cpu_ms_per_request": ms, "load1": os.getloadavg()[0]}
                results[v["name"]].append(row)
                print(v["name"], json.dumps(row), flush=True)
                cluster.undeploy("hops")
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    summary = {name: {"c1_p50_ms_median": statistics.median(r["c1_p50_ms"] for r in rows),
                      "saturation_req_per_s_median": statistics.median(r["saturation_req_per_s"] for r in rows),
                      "cpu_ms_per_request_median": statistics.median(r["cpu_ms_per_request"].get("total", float("nan")) for r in rows)}
               for name, rows in results.items()}
    for name, s in summary.items():
        print(f"{name}: c1 p50 {s['c1_p50_ms_median']:.1f} ms, saturation {s['saturation_req_per_s_median']:.1f} req/s, "
              f"CPU {s['cpu_ms_per_request_median']:.1f} ms/request")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"settings": vars(args), "runs": results, "summary": summary,
                                              "throughput_optimized": os.environ.get("RAY_SERVE_THROUGHPUT_OPTIMIZED"),
                                              "haproxy": os.environ.get("RAY_SERVE_ENABLE_HA_PROXY")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
