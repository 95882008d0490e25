"""The routing service under ``serve run`` on a two-node ``LocalCluster``: the Embedder preferring
the second node, the rest on the head; and what happens when that node dies.

Placement uses node labels (``LocalCluster`` labels each node ``router-node=<name>``), not a custom
resource: ``resources: {node_b: 0.01}`` pins hard, so once ``node_b`` is gone the replacement
Embedder can start nowhere and Serve never answers again. ``label_selector`` plus
``fallback_strategy`` prefers ``node_b`` and falls back to the head, which is what "Serve answers
from the surviving node once it restarts the replica" needs. The Scorer, the Dispatcher, the Serve
controller and the (``HeadOnly``) proxy stay on the head.

Used by ``tests/serve_app/test_multinode.py`` and the ``node_kill`` step of ``load_tests.suite``.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Sequence

import yaml

from load_tests.cluster import REPO_ROOT, SERVE_CONFIG, wait_healthy
from load_tests.local_cluster import LocalCluster, cluster_env

EMBEDDER_LOG_MARKER = "ServeReplica:router:Embedder"  # Ray's ":actor_name:" line in a replica's worker log


def serve_config(app_args: dict, port: int, embedder_node: str = "node_b", head: str = "head") -> dict:
    """``deploy/serve_config.yaml`` with ``app_args`` merged into its args, HTTP on ``port``, one
    replica per deployment (a fixed count, so a lost replica is visible), the Embedder preferring
    ``embedder_node`` and falling back to ``head``, the Scorer and Dispatcher on ``head``."""
    cfg = yaml.safe_load(SERVE_CONFIG.read_text())
    cfg["http_options"] = {**cfg.get("http_options", {}), "host": "127.0.0.1", "port": port}
    (app,) = cfg["applications"]
    app["args"] = {**app["args"], **app_args}
    for dep in app["deployments"]:
        dep.pop("autoscaling_config", None)
        dep["num_replicas"] = 1
        opts = dict(dep.get("ray_actor_options") or {})
        if dep["name"] == "Embedder":
            opts["label_selector"] = {"router-node": embedder_node}
            opts["fallback_strategy"] = [{"label_selector": {"router-node": head}}]
        else:
            opts["label_selector"] = {"router-node": head}
        dep["ray_actor_options"] = opts
    return cfg


def fallback_head_cpus(config: dict) -> int:
    """CPUs the head needs to hold every deployment of ``config`` once the Embedder has fallen back to
    it (one replica each, as :func:`serve_config` sets): the sum of their ``num_cpus``, rounded up.
    With fewer, a lost Embedder node leaves the replacement nowhere to start (all 504s)."""
    (app,) = config["applications"]
    total = sum(float((d.get("ray_actor_options") or {}).get("num_cpus", 1)) for d in app["deployments"])
    return max(1, math.ceil(total - 1e-9))


@contextlib.contextmanager
def serve_run(cluster: LocalCluster, config: dict, workdir: Path, timeout_s: float = 240.0, env: dict | None = None) -> Iterator[str]:
    """``serve run CONFIG --address ...`` (a driver process of its own) until ``/healthz`` answers;
    yields the base URL. The driver is killed on the way out, without the app deletion a Ctrl-C
    would start (10-20 s on 2 busy cores): the cluster is about to be stopped, Serve with it."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / "serve_run.log"
    serve_bin = str(Path(sys.executable).with_name("serve"))
    with open(log, "wb") as out:
        proc = subprocess.Popen([serve_bin, "run", "--address", cluster.address, str(path)], cwd=REPO_ROOT,
                                stdout=out, stderr=subprocess.STDOUT, env={**cluster_env(), **(env or {})}, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{config['http_options']['port']}"
    try:
        try:
            wait_healthy(url, timeout_s)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; serve run said: {log.read_text(errors='replace')[-2500:]}") from None
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


def route(url: str, prompts: Sequence[str], lam: float, timeout_ms: int = 5000) -> tuple[int, dict]:
    """(status, JSON body) of one ``POST /v1/route``; no exception for 4xx/5xx or a dropped connection
    (status 0)."""
    data = json.dumps({"prompt": list(prompts), "lambda": lam}).encode()
    req = urllib.request.Request(url + "/v1/route", data=data,
                                 headers={"Content-Type": "application/json", "x-router-timeout-ms": str(timeout_ms)})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout_ms / 1000 + 10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        try:
            return err.code, json.loads(err.read())
        except ValueError:
            return err.code, {}
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return 0, {"error": {"message": str(exc)}}


def decisions(body: dict) -> list[tuple[str, dict]]:
    """(model, {pool model: (quality, cost)}) per decision of a /v1/route body."""
    return [(d["model"], {m: (s["quality"], s["cost"]) for m, s in d["scores"].items()}) for d in body["decisions"]]


def kill_and_wait_for_answers(cluster: LocalCluster, node: str, url: str, prompts: Sequence[str], lam: float,
                              timeout_s: float = 180.0, poll_s: float = 0.5) -> dict:  # fmt: skip
    """SIGKILL every process of ``node`` and poll ``/v1/route`` until it answers 200 again.

    Returns ``gap_s`` (kill -> first 200), ``statuses`` (count of each status seen in between: a
    503 is the Dispatcher giving up on a replica that stays dead within the deadline, 0 a dropped
    connection) and the first good ``body``. ``gap_s`` is None when no 200 came in ``timeout_s``."""
    (victim,) = [n for n in cluster.nodes if n.name == node]
    t0 = time.monotonic()
    victim.kill()
    statuses: dict[str, int] = {}
    while time.monotonic() - t0 < timeout_s:
        status, body = route(url, prompts, lam, timeout_ms=2000)  # the shortest deadline a caller may set: finer steps
        if status == 200:
            return {"gap_s": round(time.monotonic() - t0, 2), "statuses": statuses, "body": body}
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        time.sleep(poll_s)
    return {"gap_s": None, "statuses": statuses, "body": None}
