"""Bring the routing service up under Serve for a load run, and look at its replicas.

The application is the real one, ``serve_app.app:build_app(args)``, deployed imperatively
(``serve.run``) with per-deployment option overrides applied to the built application: replica
counts, autoscaling, ``max_queued_requests``, ``user_config`` batching. That is what the
``deployments:`` list of a Serve config file does; doing it in Python lets one benchmark redeploy
many variants in the same Ray session, and coexist with the test suite's imperative ``serve.run``
(Serve refuses to mix config-file and imperative deploys in one cluster).

Ray is started here only when it is not running already: 2 CPUs, no dashboard, 127.0.0.1 and a
free port (two proxies on one port would split the traffic silently).
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE_CONFIG = REPO_ROOT / "deploy" / "serve_config.yaml"
GPU_SERVE_CONFIG = REPO_ROOT / "deploy" / "serve_config.gpu.yaml"
COLOCATED_SERVE_CONFIG = REPO_ROOT / "deploy" / "serve_config.colocated.yaml"
DEPLOYMENTS = ("Embedder", "Scorer", "Dispatcher")
# Serve options a benchmark may override per deployment (a subset of Deployment.options).
OPTION_KEYS = {
    "num_replicas", "autoscaling_config", "max_ongoing_requests", "max_queued_requests", "user_config",
    "ray_actor_options", "graceful_shutdown_timeout_s", "health_check_period_s", "health_check_timeout_s",
    "logging_config", "backpressure_config",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_deployment_options(path: str | Path = SERVE_CONFIG, app_index: int = 0) -> dict[str, dict]:
    """Per-deployment options of ``deploy/serve_config.yaml`` (``{name: {option: value}}``)."""
    import yaml

    path = Path(path)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    apps = data.get("applications") or []
    if not apps:
        return {}
    out = {}
    for dep in apps[app_index].get("deployments") or []:
        name = dep.get("name")
        if name:
            out[name] = {k: v for k, v in dep.items() if k in OPTION_KEYS}
    return out


def config_app_args(path: str | Path = SERVE_CONFIG, app_index: int = 0) -> dict:
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    return dict((data.get("applications") or [{}])[app_index].get("args") or {})


def merge_options(*layers: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict]:
    """Later layers win, per deployment and per option. ``autoscaling_config=None`` clears it,
    and ``num_replicas`` given alone drops an inherited autoscaling config (fixed replica count)."""
    out: dict[str, dict] = {}
    for layer in layers:
        for name, opts in (layer or {}).items():
            cur = out.setdefault(name, {})
            if "num_replicas" in opts and "autoscaling_config" not in opts:
                cur.pop("autoscaling_config", None)
            if "autoscaling_config" in opts and opts["autoscaling_config"] is not None and "num_replicas" not in opts:
                cur.pop("num_replicas", None)
            cur.update(opts)
            if cur.get("autoscaling_config") is None:
                cur.pop("autoscaling_config", None)
    return out


def apply_options(app, overrides: Mapping[str, Mapping[str, Any]]):
    """A copy of the built application with ``Deployment.options(**overrides[name])`` applied to
    each deployment of the graph (children are rebuilt too, so the handles point at the copies).

    Uses ``Application._bound_deployment`` (what Serve's own ``build_app`` reads): Serve offers no
    public way to override options of an application a builder function returned."""
    from ray.serve import Application

    dep = app._bound_deployment
    args = tuple(apply_options(a, overrides) if isinstance(a, Application) else a for a in dep.init_args)
    kwargs = {k: apply_options(v, overrides) if isinstance(v, Application) else v for k, v in dep.init_kwargs.items()}
    opts = dict(overrides.get(dep.name, {}))
    if "autoscaling_config" in opts and "num_replicas" not in opts:
        opts["num_replicas"] = "auto"
    new = dep.options(_init_args=args, _init_kwargs=kwargs, _internal=True, **opts)
    return Application(new)


def node_cpus() -> int:
    """CPUs of the connected Ray cluster (this machine's when Ray is not running)."""
    import os

    import ray

    if ray.is_initialized():
        return int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
    return os.cpu_count() or 1


def torch_thread_plan(options: Mapping[str, Mapping[str, Any]], app_args: Mapping[str, Any], cpus: int) -> dict:
    """The torch threads a deployment with these options can run at once: per torch deployment
    (Embedder, Scorer; the Dispatcher alone with ``layout: colocated``) its most replicas
    (``num_replicas``, or the autoscaler's ``max_replicas``) x the threads each replica takes from the
    CPUs Ray gives it (``serve_app.batching.torch_threads_for``), against the machine's ``cpus``. The
    suite logs it for every deployment of every step."""
    from serve_app.batching import torch_threads_for
    from serve_app.deployments import Dispatcher, Embedder, Scorer

    # Colocated: the Dispatcher's process runs both stages on one thread pool (torch's threads are per process).
    colocated = app_args.get("layout") == "colocated"
    names = ("Dispatcher",) if colocated else ("Embedder", "Scorer")
    requested = {"Embedder": app_args.get("embedder_threads"), "Scorer": None, "Dispatcher": app_args.get("embedder_threads")}
    defaults = {"Embedder": Embedder, "Scorer": Scorer, "Dispatcher": Dispatcher}
    out: dict[str, Any] = {"cpus": cpus}
    total = 0
    for name in names:
        opts = options.get(name, {})
        auto = opts.get("autoscaling_config")
        replicas = int(auto.get("max_replicas", 1)) if auto else int(opts.get("num_replicas", 1))
        actor = {**(defaults[name].ray_actor_options or {}), **(opts.get("ray_actor_options") or {})}
        threads = torch_threads_for(actor.get("num_cpus"), requested[name])
        out[name] = {"replicas": replicas, "num_cpus": actor.get("num_cpus"), "threads_each": threads}
        total += replicas * threads
    out["total"] = total
    out["within_cpus"] = total <= cpus
    parts = " + ".join(f"{n}{' (colocated)' if colocated else ''} {out[n]['replicas']}x{out[n]['threads_each']}" for n in names)
    out["line"] = f"{parts} = {total} on {cpus} CPUs"
    return out


@dataclass
class Service:
    url: str
    app_name: str
    port: int


def ensure_ray(num_cpus: int | None = 2) -> bool:
    """Start a local Ray (a new one, never somebody else's cluster) if none is running in this
    process; True when this call started it. ``num_cpus=None``: all of the machine's."""
    import os

    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, object_store_memory=256 * 1024**2,
             configure_logging=True, logging_level="WARNING")
    return True


def serve_running() -> bool:
    """True when Serve is running in the connected Ray cluster."""
    from ray.serve.context import _get_global_client

    try:
        return _get_global_client() is not None
    except Exception:  # noqa: BLE001 - no controller
        return False


def ensure_serve(port: int | None = None) -> int:
    """Start Serve on 127.0.0.1 (a free port) unless it runs; the HTTP port in use either way."""
    from ray import serve
    from ray.serve.context import _get_global_client

    try:
        client = _get_global_client()
    except Exception:  # noqa: BLE001 - not started, or the controller went away
        client = None
    if client is not None:
        return int(client.http_config.port)
    port = port or free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"log_level": "WARNING", "enable_access_log": False})
    return port


def wait_healthy(url: str, timeout_s: float = 180.0) -> dict:
    """Poll ``GET /healthz`` until it answers 200 (returns its body) or ``timeout_s`` passes."""
    import json
    import urllib.request

    deadline = time.monotonic() + timeout_s
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
                if resp.status == 200:
                    return json.loads(resp.read())
                last = f"status {resp.status}"
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"{url}/healthz not healthy after {timeout_s:.0f} s: {last}")


def deploy(app_args: Mapping[str, Any], options: Mapping[str, Mapping[str, Any]] | None = None, app_name: str = "router-bench",
           route_prefix: str = "/", port: int | None = None, timeout_s: float = 180.0) -> Service:
    """Build the app from ``app_args`` (``serve_app.config.AppArgs``), apply ``options`` and run it."""
    from ray import serve

    from serve_app.app import build_app

    port = ensure_serve(port)
    app = apply_options(build_app(dict(app_args)), options or {})
    serve.run(app, name=app_name, route_prefix=route_prefix, blocking=False)
    prefix = "" if route_prefix == "/" else route_prefix.rstrip("/")
    url = f"http://127.0.0.1:{port}{prefix}"
    wait_healthy(url, timeout_s)
    return Service(url=url, app_name=app_name, port=port)


def undeploy(app_name: str) -> None:
    from ray import serve

    with contextlib.suppress(Exception):
        serve.delete(app_name, _blocking=True)


# -- looking at replicas -----------------------------------------------------------------------
def replica_states(app_name: str) -> dict[str, dict[str, int]]:
    """``{deployment: {state: count}}`` from ``serve.status()`` (RUNNING, STARTING, ...)."""
    from ray import serve

    app = serve.status().applications.get(app_name)
    if app is None:
        return {}
    return {name: {str(k): int(v) for k, v in d.replica_states.items()} for name, d in app.deployments.items()}


def replica_actor_names(app_name: str, deployment: str) -> list[str]:
    """Names of the live replica actors of one deployment (namespace ``serve``).

    ``ray.util.list_named_actors`` asks the GCS directly; ``ray.util.state.list_actors`` would need
    the dashboard's API server, which these runs do not start (``include_dashboard=False``)."""
    import ray

    prefix = f"SERVE_REPLICA::{app_name}#{deployment}#"
    actors = ray.util.list_named_actors(all_namespaces=True)
    return sorted(a["name"] for a in actors if a.get("namespace") == "serve" and a["name"].startswith(prefix))


def kill_replica(app_name: str, deployment: str) -> str:
    """``ray.kill`` one live replica of ``deployment`` (Serve should replace it); its actor name."""
    import ray

    names = replica_actor_names(app_name, deployment)
    if not names:
        raise RuntimeError(f"no live replica of {deployment} in app {app_name}")
    ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
    return names[0]


def wait_running(app_name: str, deployment: str, n: int, timeout_s: float = 120.0, poll_s: float = 0.25,
                 exactly: bool = False) -> float | None:
    """Seconds until ``deployment`` has ``n`` RUNNING replicas (``exactly``: and no others), None on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        states = replica_states(app_name).get(deployment, {})
        running = states.get("RUNNING", 0)
        if (running == n and sum(states.values()) == n) if exactly else running >= n:
            return time.monotonic() - t0
        time.sleep(poll_s)
    return None


def wait_healthy_deployments(app_name: str, timeout_s: float = 180.0, poll_s: float = 0.5) -> None:
    """Until every deployment of the app is HEALTHY (an update has finished), or TimeoutError."""
    from ray import serve

    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout_s:
        app = serve.status().applications.get(app_name)
        if app is not None:
            last = {name: getattr(d.status, "value", str(d.status)) for name, d in app.deployments.items()}
            if last and all(v == "HEALTHY" for v in last.values()):
                return
        time.sleep(poll_s)
    raise TimeoutError(f"app {app_name} not healthy after {timeout_s:.0f} s: {last}")


# -- CPU per process (a profile that survives a busy machine) ------------------------------------
def _raylet_pid() -> int | None:
    """PID of the raylet this driver started (None when it joined a cluster it did not start)."""
    try:
        import ray

        node = ray._private.worker._global_node  # the node this process started, if any
        procs = node.all_processes.get("raylet") if node is not None else None
        return procs[0].process.pid if procs else None
    except Exception:  # noqa: BLE001 - internal API moved: no profile, not a failure
        return None


class Proc(NamedTuple):
    """One process in ``process_table``: ``started`` (clock ticks after boot) tells a reused pid apart."""

    ppid: int
    title: str  # the command line's first word, which Ray sets to ray::<actor or task> in its workers
    cpu_s: float  # user + system so far
    cmdline: str
    started: int


def process_table() -> dict[int, Proc]:
    """Every process of this machine by pid, from ``/proc``; ``{}`` where there is none."""
    proc = Path("/proc")
    if not proc.exists():
        return {}
    tick = __import__("os").sysconf("SC_CLK_TCK")
    procs: dict[int, Proc] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, ValueError):
            continue
        procs[int(entry.name)] = Proc(int(fields[1]), argv[0], (int(fields[11]) + int(fields[12])) / tick, " ".join(argv).strip(), int(fields[19]))
    return procs


def serve_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by each Serve process of this driver's Ray node:
    ``{"proxy": s, "haproxy": s, "Dispatcher": s, "Embedder": s, "Scorer": s}`` (replicas of one deployment summed).

    Read from ``/proc`` for the raylet's children, so it only works on Linux for a Ray this process
    started; ``{}`` otherwise. Differences over a load run divided by the requests served give the
    CPU each request costs in each process: wall-clock latencies on a shared machine move with
    everyone else's load, CPU time per request much less."""
    raylet = _raylet_pid()
    if raylet is None:
        return {}
    procs = process_table()
    out: dict[str, float] = {}
    for ppid, title, seconds, *_ in procs.values():
        if ppid == raylet and "ProxyActor" in title:
            key = "proxy"
        elif ppid == raylet and "ServeReplica:" in title:
            # ray::ServeReplica:<app>:<deployment>, with ".<method>" while a request runs
            key = title.split(":")[-1].split(".")[0].strip()
        elif Path(title).name == "haproxy" and procs.get(ppid, (None,))[0] == raylet:
            key = "haproxy"  # the HAProxy ingress (RAY_SERVE_ENABLE_HA_PROXY=1), started by a Serve actor
        else:
            continue
        out[key] = out.get(key, 0.0) + seconds
    return out


def cpu_ms_per_request(before: Mapping[str, float], after: Mapping[str, float], requests: int) -> dict[str, float]:
    """CPU milliseconds per request in each Serve process between two ``serve_cpu_seconds`` readings."""
    if not requests:
        return {}
    keys = sorted(set(before) | set(after))
    out = {k: 1000.0 * (after.get(k, 0.0) - before.get(k, 0.0)) / requests for k in keys}
    out["total"] = sum(out.values())
    return out
