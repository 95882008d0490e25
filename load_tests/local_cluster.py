"""A real multi-node Ray cluster on this machine: ``ray start --head`` plus more ``ray start
--address`` nodes, each with its own temp dir, on 127.0.0.1.

Stopping is exact: ``ray stop`` cannot be scoped (it kills every Ray process of the machine,
other users' included), so each node is started with ``--block`` in a process group of its own
(``ray start`` makes itself a group leader and its daemons inherit the group), and stopping a
node signals that group, then any process left whose command line names the node's own temp dir
(workers, which Ray may start elsewhere in the tree). Nothing else is touched.
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

from load_tests.cluster import free_port


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def cluster_env() -> dict:
    """Environment for the cluster's processes and for drivers that connect to it."""
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    # The flag the Makefile sets to 0 makes a head refuse other nodes ("multi-node clusters are not
    # supported"); here other nodes are the point, and --node-ip-address keeps everything on 127.0.0.1.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "1"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def _pids_naming(marker: str) -> list[int]:
    """PIDs of this user's processes whose command line contains ``marker`` (a temp dir of ours)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmd:
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

    def kill(self, sig: int = signal.SIGKILL, grace_s: float = 5.0) -> None:
        """Stop this node's processes (its process group, then stragglers naming its temp dir)."""
        with _suppress():
            os.killpg(self.proc.pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (self.alive() or _pids_naming(self.temp_dir)):
            time.sleep(0.2)
        for pid in _pids_naming(self.temp_dir):
            with _suppress():
                os.kill(pid, signal.SIGKILL)
        with _suppress():
            os.killpg(self.proc.pid, signal.SIGKILL)
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
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "LocalCluster":
        try:
            self.port = free_port()
            self._start("head", ["--head", f"--port={self.port}", "--include-dashboard=false",
                                 f"--ray-client-server-port={free_port()}"], resources={"head": 1}, num_cpus=self.head_cpus)  # fmt: skip
            self.wait_nodes(1)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self, name: str, args: list[str], resources: dict | None = None, num_cpus: int | None = None) -> Node:
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
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=cluster_env(), start_new_session=True)
        node = Node(name, temp_dir, proc, log)
        self.nodes.append(node)
        return node

    def add_node(self, name: str, num_cpus: int = 2, resources: dict | None = None) -> Node:
        """A worker node with a custom resource ``{name: 1}`` (plus ``resources``) to pin work on it."""
        n = len(self.nodes)
        node = self._start(name, [f"--address={self.address}"], resources={name: 1, **(resources or {})}, num_cpus=num_cpus)
        self.wait_nodes(n + 1)
        return node

    def alive_nodes(self) -> list[dict]:
        """The cluster's alive nodes, asked from a short-lived driver process (this one stays unconnected)."""
        code = ("import json, ray; ray.init(address=%r, log_to_driver=False); "
                "print('NODES=' + json.dumps([{'resources': n['Resources'], 'alive': n['Alive']} for n in ray.nodes()]))") % self.address  # fmt: skip
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
        raise TimeoutError(f"{n} Ray node(s) not up at {self.address} after {self.start_timeout_s:.0f} s ({last}); "
                           f"logs in {self.base}")  # fmt: skip

    def stop(self) -> None:
        for node in reversed(self.nodes):  # workers first, the head last
            node.kill(signal.SIGTERM)
        self.nodes.clear()
        shutil.rmtree(self.base, ignore_errors=True)
