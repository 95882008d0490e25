"""route-logs on a real two-node Ray cluster on 127.0.0.1 (``load_tests.local_cluster``): the CLI
connects with --ray-address, its actor pool spans both nodes, every row is accounted for, and only
the processes this test started are stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from load_tests.local_cluster import LocalCluster, cluster_env
from tests.router.batch.test_route_logs import _three_logs

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def test_route_logs_with_actors_on_both_nodes(tiny_artifact, tmp_path):
    logs = _three_logs(tmp_path)
    out = tmp_path / "out"
    with LocalCluster(head_cpus=2) as cluster:
        cluster.add_node("node_b", num_cpus=2)
        assert len(cluster.alive_nodes()) == 2
        # 3 actors of 1 CPU cannot fit on one 2-CPU node: the pool must use both nodes.
        cmd = [sys.executable, "-m", "router.cli.main", "route-logs", "--artifact", tiny_artifact, "--input", str(logs),
               "--out", str(out), "--ray-address", cluster.address, "--actors", "3", "--threads", "1", "--batch-size", "2",
               "--lambda", "0,10", "--no-cache"]  # fmt: skip
        env = {**cluster_env(), "PYTHONPATH": str(ROOT)}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"route-logs on the two-node cluster did not finish in 300 s: {str(exc.stderr)[-2000:]}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert cluster.nodes_running("RouteBatches") == {"head", "node_b"}
    assert not (left := cluster.leftover_pids()), left  # every process of the cluster is gone, and only those were signalled
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["rows_read"], summary["rows_routed"], summary["rows_quarantined"]) == (21, 15, 6)
    decisions = pd.read_parquet(out / "decisions")
    assert len(decisions) == 30 and not decisions.duplicated(["source", "line", "lambda"]).any()
    assert "rows read 21: routed 15, quarantined 6" in proc.stdout
