"""A/B of the Serve path's own cost: a model-free ``hash:<dim>`` router (dcrouter's 9 models) served
by the code on ``PYTHONPATH``, concurrency-1 latency, closed-loop saturation and CPU milliseconds per
request in each Serve process, for several variants, interleaved (variant A, B, A, B...) so that a
busy machine's load hits every variant alike.

    python load_tests/bench_hops.py --variants '[{"name": "default"}]' --out results/hops.json
    python load_tests/bench_hops.py --ingress python-proxy,haproxy --update-md \
        --variants '[{"name": "floor", "floor": true}, {"name": "split"}, {"name": "colocated", "args": {"layout": "colocated"}}]'

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


SECTION = "serve-hops"
# The ingress modes a report compares: how Ray is started (Ray reads these when it starts).
INGRESS = {"python-proxy": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "0"},
           "haproxy": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}}


def report(paths: dict[str, Path], command: str) -> str:
    """The BENCHMARKS.md section from one JSON per ingress mode (``{mode: path}``)."""
    from load_tests.common import format_table

    rows, settings = [], {}
    for mode, path in paths.items():
        data = json.loads(Path(path).read_text())
        settings = data["settings"]
        for name, runs in data["runs"].items():
            s = data["summary"][name]
            cpu = statistics.median(r["cpu_ms_per_request"].get("total", float("nan")) for r in runs)
            rows.append({"ingress": mode, "variant": name, "c1_p50_ms": round(s["c1_p50_ms_median"], 1),
                         "saturation_req_per_s": round(s["saturation_req_per_s_median"], 1), "cpu_ms_per_request": round(cpu, 2),
                         "repeats": len(runs), "load1": round(max(r["load1"] for r in runs), 2)})
    return "\n".join([
        "## Serve's own cost: layouts and ingress (model-free encoder)",
        "",
        f"Command: `{command}`. A model-free `hash:{settings.get('dim')}` router (dcrouter's 9 models), so what is "
        "measured is Serve's path, not an encoder: /v1/route at concurrency 1 (p50 of "
        f"{settings.get('c1_requests')} requests) and closed-loop saturation at concurrency {settings.get('concurrency')} for "
        f"{settings.get('saturation_s')} s, medians of the interleaved repeats (variant A, B, A, B); CPU milliseconds per "
        "request summed over the Serve processes (proxy actor, HAProxy, replicas; from /proc). `floor` is a do-nothing "
        "FastAPI ingress (no router): what the ingress and one replica hop cost on this machine. `split` is "
        "deploy/serve_config.yaml's three deployments, `colocated` the one-deployment layout (`layout: colocated`). "
        "Each ingress mode is its own Ray: `python-proxy` = Serve's fast path (`RAY_SERVE_THROUGHPUT_OPTIMIZED=1`) "
        "with its Python proxy actor, `haproxy` = the same plus `RAY_SERVE_ENABLE_HA_PROXY=1`. `load1`: the highest "
        "1-minute load average seen after a repeat (2 CPUs).",
        "",
        format_table(rows),
        "",
    ])


def run_report(args, argv: list[str]) -> int:
    """Every ingress mode in a subprocess of its own (Ray reads the flags when it starts), then the report."""
    import subprocess

    out = Path(args.out or "results/hops")
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for mode in args.ingress.split(","):
        if mode not in INGRESS:
            raise SystemExit(f"--ingress: unknown mode {mode!r}; choose from {list(INGRESS)}")
        paths[mode] = out / f"{mode}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--variants", args.variants, "--repeats", str(args.repeats),
               "--dim", str(args.dim), "--mix", args.mix, "--c1-requests", str(args.c1_requests),
               "--saturation-s", str(args.saturation_s), "--concurrency", str(args.concurrency), "--out", str(paths[mode])]
        print(f"[bench_hops] ingress {mode}", flush=True)
        subprocess.run(cmd, env={**os.environ, **INGRESS[mode]}, check=True)
    import shlex

    text = report(paths, "python load_tests/bench_hops.py " + shlex.join(argv))
    print(text)
    if args.update_md:
        from load_tests.common import update_benchmarks_md

        print(f"updated {update_benchmarks_md(text, section=SECTION)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default='[{"name": "default"}]', help="JSON list of variants (see the module docstring)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dim", type=int, default=384, help="hash encoder width (384 = all-MiniLM-L6-v2's)")
    p.add_argument("--mix", default="routellm", help="bundled table the prompts come from")
    p.add_argument("--c1-requests", type=int, default=100)
    p.add_argument("--saturation-s", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--out", help="JSON output path (with --ingress: the folder, default results/hops)")
    p.add_argument("--ingress", help=f"comma-separated ingress modes ({','.join(INGRESS)}): run each in its own Ray and "
                   "report them side by side (BENCHMARKS.md section serve-hops with --update-md)")
    p.add_argument("--update-md", action="store_true", help="with --ingress: rewrite the serve-hops section of BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.ingress:
        return run_report(args, list(argv if argv is not None else sys.argv[1:]))
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
