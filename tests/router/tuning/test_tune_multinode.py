"""`router tune --ray-address` on a real two-node Ray cluster on 127.0.0.1
(``load_tests.local_cluster``): trials run on both nodes, the second node is killed while one of
its trials runs, and the search still ends with every trial accounted for (the lost one as an
error) and a best_config.yaml that `router train --config` accepts."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from load_tests.local_cluster import FAST_NODE_DEATH, LocalCluster, cluster_env

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TRIAL_MARKER = ":actor_name:_trial"  # Ray's line in the worker log of a Tune trial of router.tuning.search._trial
SAMPLES = 4


def test_tune_on_two_nodes_survives_losing_one(tmp_path):
    from router.data.synthetic import make_synthetic_frame
    from router.model.config import load_train_config

    data = tmp_path / "table.parquet"
    make_synthetic_frame(n=300, seed=0).to_parquet(data)
    out = tmp_path / "out"
    # 1 CPU per node and per trial: two trials at a time, one on each node.
    with LocalCluster(head_cpus=1, system_env=FAST_NODE_DEATH) as cluster:
        cluster.add_node("node_b", num_cpus=1)
        cmd = [sys.executable, "-m", "router.cli.main", "tune", "--data", str(data), "--split", "all", "--encoder", "hash:64",
               "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--ray-address", cluster.address,
               "--num-samples", str(SAMPLES), "--max-epochs", "6", "--grace-period", "6", "--cpus-per-trial", "1"]  # fmt: skip
        with open(tmp_path / "tune.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=cluster_env())
        try:
            deadline = time.monotonic() + 180
            while "node_b" not in cluster.nodes_running(TRIAL_MARKER):
                assert proc.poll() is None, f"tune ended before a trial ran on node_b: {(tmp_path / 'tune.log').read_text()[-2000:]}"
                assert time.monotonic() < deadline, "no trial on node_b within 180 s"
                time.sleep(0.5)
            cluster.nodes[-1].kill()  # mid-trial: a trial needs seconds to import torch and train
            assert proc.poll() is None, "tune finished before node_b was killed"
            proc.wait(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tune did not finish within 240 s of losing node_b: {(tmp_path / 'tune.log').read_text()[-2000:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
        ran_on = cluster.nodes_running(TRIAL_MARKER)
    assert not (left := cluster.leftover_pids()), left
    text = (tmp_path / "tune.log").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert ran_on == {"head", "node_b"}
    trials = json.loads((out / "results.json").read_text())["trials"]
    status = [t["status"] for t in trials]
    assert len(trials) == SAMPLES and set(status) <= {"complete", "stopped early", "error"}, status
    assert "error" in status, status  # the trial lost with node_b is recorded, not dropped
    assert "complete" in status, status
    load_train_config(out / "best_config.yaml")  # what `router train --config` reads
