"""A real multi-node Ray cluster on this machine: ``ray start --head`` plus more ``ray start
--address`` nodes, each with its own temp dir, on 127.0.0.1.

Stopping is exact: ``ray stop`` cannot be scoped (it kills every Ray process of the machine,
other users' included), so each node is started with ``--block`` in a session of its own, and stopping a
node signals every process of the session that ``ray start`` opened (the node's daemons and its
workers, which Ray puts in process groups of their own) and any process whose command line names
the node's own temp dir. Nothing else is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from load_tests.cluster import REPO_ROOT, free_port


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def cluster_env() -> dict:
    """Environment for the cluster's processes and for drivers that connect to it."""
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    # At 0 (as the Makefile sets it) Ray keeps "127.0.0.1" as it is; at 1 it replaces it by the
    # machine's outward IP everywhere (node IPs, the GCS address), and the traffic goes over that.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # Every node's workers import this checkout's code (serve_app, router), whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


# ``ray start --address`` refuses to join a cluster unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1,
# and that flag also swaps 127.0.0.1 for the outward IP (then the join fails: a head on 127.0.0.1
# listens on loopback only). A joining node's ``ray start`` therefore runs with the flag at 0 and
# only the join check lifted, so every node, daemon and worker stays on 127.0.0.1.
_JOIN_SHIM = (
    "import sys\n"
    "from ray._private import ray_constants, services\n"
    "ray_constants.ENABLE_RAY_CLUSTER = True\n"
    "services.resolve_ip_for_localhost = lambda host: host\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv[0] = 'ray'\n"
    "main()\n"
)


# The GCS declares a node dead after health_check_failure_threshold missed checks, period_ms apart
# (Ray's defaults, 5 x 3 s, took 16.8 s here). Tests use this to learn of a killed node in ~3 s.
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
                   "RAY_health_check_initial_delay_ms": "1000"}  # fmt: skip


def _pids_naming(marker: str, sessions: frozenset[int] = frozenset()) -> list[int]:
    """PIDs of this user's processes whose command line contains ``marker`` (a temp dir of ours) or
    that belong to one of ``sessions``.

    The session is what finds a node's workers: each one is a process group of its own and renames
    itself (``ray::Embedder``), so neither the node's group nor its temp dir finds it; all stay in
    the session that ``ray start`` opened."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state, _ppid, _pgrp, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError, IndexError):
            continue
        if state in ("Z", "X"):  # already dead, only not yet reaped by its parent
            continue
        if marker in cmd or int(session) in sessions:
            out.append(int(entry.name))
    return out


@dataclass
class Node:
    name: str
    temp_dir: str
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        """Every live process of this node: its session (``ray start`` is the session leader, so
        the session id is its pid) and anything naming its temp dir."""
        return _pids_naming(self.temp_dir, frozenset({self.proc.pid}))

    def kill(self, sig: int = signal.SIGKILL, grace_s: float = 5.0) -> None:
        """Signal all of this node's processes at once (SIGKILL: the node is gone in an instant, as a
        lost machine is), wait up to ``grace_s`` for them to end, then SIGKILL what is left."""
        for pid in self.pids():
            with _suppress():
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (self.alive() or self.pids()):
            time.sleep(0.2)
        for pid in self.pids():
            with _suppress():
                os.kill(pid, signal.SIGKILL)
        with _suppress():
            self.proc.wait(timeout=5)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        return typ is not None and issubclass(typ, (ProcessLookupError, PermissionError, subprocess.TimeoutExpired, OSError))


@dataclass
class LocalCluster:
    """``with LocalCluster() as c: c.add_node("node_b", num_cpus=2)``; ``c.address`` for drivers."""

    head_cpus: int = 2
    object_store_bytes: int = 128 * 1024**2
    start_timeout_s: float = 90.0
    base: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="rmn-", dir="/tmp"))  # short: Ray's socket paths
    nodes: list[Node] = field(default_factory=list)
    # RAY_* settings for every node, e.g. {"RAY_health_check_period_ms": "1000"} (Ray reads its
    # system config from the environment of the processes it starts).
    system_env: dict[str, str] = field(default_factory=dict)
    _sessions: set[int] = field(default_factory=set, repr=False)
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "LocalCluster":
        def start_head() -> Node:
            self.port = free_port()
            return self._start("head", ["--head", f"--port={self.port}", "--include-dashboard=false",
                                        f"--ray-client-server-port={free_port()}"], resources={"head": 1}, num_cpus=self.head_cpus)  # fmt: skip

        try:
            self._start_and_wait(start_head)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self, name: str, args: list[str], resources: dict | None = None, num_cpus: int | None = None,
               labels: dict | None = None) -> Node:
        temp_dir = os.path.join(self.base, name)
        os.makedirs(temp_dir, exist_ok=True)
        log = Path(self.base) / f"{name}.log"
        cmd = [_ray_bin(), "start", "--block", f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1",
               f"--object-store-memory={self.object_store_bytes}", "--disable-usage-stats",
               # Ports other Ray clusters on the machine may hold by default: free ones of our own.
               f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
               f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}", *args]  # fmt: skip
        if num_cpus is not None:
            cmd.append(f"--num-cpus={num_cpus}")
        if resources:
            cmd.append(f"--resources={json.dumps(resources)}")
        # Node labels (``key=value,...``): what ``label_selector`` and ``fallback_strategy`` match, the
        # soft placement a custom resource cannot express (a resource pins hard: lose that node and
        # nothing needing it can start anywhere).
        cmd.append("--labels=" + ",".join(f"{k}={v}" for k, v in {"router-node": name, **(labels or {})}.items()))
        if "--head" not in args:
            cmd[:1] = [sys.executable, "-c", _JOIN_SHIM]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**cluster_env(), **self.system_env},
                                    start_new_session=True)  # fmt: skip
        node = Node(name, temp_dir, proc, log)
        self.nodes.append(node)
        self._sessions.add(proc.pid)
        return node

    def add_node(self, name: str, num_cpus: int = 2, resources: dict | None = None, labels: dict | None = None) -> Node:
        """A worker node with a custom resource ``{name: 1}`` (plus ``resources``) to pin work on it
        hard, and the label ``router-node=<name>`` (plus ``labels``) to prefer it softly."""
        return self._start_and_wait(lambda: self._start(name, [f"--address={self.address}"], resources={name: 1, **(resources or {})},
                                                        num_cpus=num_cpus, labels=labels))  # fmt: skip

    def _start_and_wait(self, start, attempts: int = 3) -> Node:
        """``start()`` a node and wait until the cluster counts it. When its ``ray start`` exits
        instead, start it again: Ray gives a raylet a fixed 30 s to register with the GCS, which a
        machine shared with other test runs can miss."""
        n = len(self.nodes)
        for attempt in range(1, attempts + 1):
            node = start()
            try:
                self.wait_nodes(n + 1)
                return node
            except RuntimeError:
                node.kill()
                self.nodes.remove(node)
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def nodes_running(self, marker: str) -> set[str]:
        """Names of the nodes with a worker log that mentions ``marker`` (e.g. an actor's name).

        Reads the logs in each node's own temp dir: a question Ray could answer only through the
        dashboard's state API, which these clusters do not start."""
        found = set()
        for node in self.nodes:
            for log in Path(node.temp_dir).glob("session_*/logs/worker-*"):
                try:
                    if marker in log.read_text(errors="replace"):
                        found.add(node.name)
                        break
                except OSError:
                    continue
        return found

    def alive_nodes(self) -> list[dict]:
        """The cluster's alive nodes, asked from a short-lived driver process (this one stays unconnected)."""
        code = ("import json, ray; ray.init(address=%r, log_to_driver=False); "
                "print('NODES=' + json.dumps([{'resources': n['Resources'], 'labels': n.get('Labels', {}), 'alive': n['Alive']} for n in ray.nodes()]))") % self.address  # fmt: skip
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=cluster_env())
        for line in proc.stdout.splitlines():
            if line.startswith("NODES="):
                return [n for n in json.loads(line[6:]) if n["alive"]]
        raise RuntimeError(f"could not list the nodes of {self.address}: {proc.stderr[-1500:]}")

    def wait_nodes(self, n: int) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        last: object = None
        while time.monotonic() < deadline:
            dead = [x for x in self.nodes if not x.alive()]
            if dead:
                raise RuntimeError(f"ray start for {dead[0].name} exited: {dead[0].log.read_text()[-2000:]}")
            try:
                if len(self.alive_nodes()) >= n:
                    return
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                last = exc
            time.sleep(1.0)
        tails = "; ".join(f"{x.name}: {x.log.read_text(errors='replace')[-800:]!r}" for x in self.nodes if x.log.exists())
        raise TimeoutError(f"{n} Ray node(s) not up at {self.address} after {self.start_timeout_s:.0f} s ({last}); "
                           f"ray start said: {tails}")  # fmt: skip

    def stop(self) -> None:
        for node in reversed(self.nodes):  # workers first, the head last
            node.kill(signal.SIGTERM)
        self.nodes.clear()
        shutil.rmtree(self.base, ignore_errors=True)

    def leftover_pids(self, wait_s: float = 10.0) -> dict[int, str]:
        """Processes of any node this cluster ever started that still run ``wait_s`` after asking
        (none once stopped; a process may take a moment to finish exiting), with their status line
        and command line."""
        deadline = time.monotonic() + wait_s
        while (pids := _pids_naming(self.base, frozenset(self._sessions))) and time.monotonic() < deadline:
            time.sleep(0.5)
        out = {}
        for pid in pids:
            with _suppress():
                stat = Path(f"/proc/{pid}/stat").read_text()[:120]
                out[pid] = stat + " | " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")[:200]
        return out
