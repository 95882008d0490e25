"""The pure parts of the multi-node runs: the Serve config ``serve run`` gets on the two-node
cluster, and the checker that says whether route-logs wrote every row once."""

from __future__ import annotations

import json

import pandas as pd

from load_tests.bench_node_kill import LAMBDAS, check_route_logs_output, write_logs
from load_tests.multinode import serve_config


def test_serve_config_prefers_node_b_for_the_embedder_only():
    from ray.serve.schema import ServeDeploySchema

    cfg = serve_config({"artifact_path": "/a", "backends_file": "/b.yaml"}, port=12345)
    ServeDeploySchema.model_validate(cfg)  # what `serve run` accepts
    assert cfg["http_options"]["port"] == 12345 and cfg["http_options"]["host"] == "127.0.0.1"
    (app,) = cfg["applications"]
    assert app["args"]["artifact_path"] == "/a" and app["args"]["request_timeout_s"] == 60  # shipped args kept
    deps = {d["name"]: d for d in app["deployments"]}
    emb = deps["Embedder"]["ray_actor_options"]
    assert emb["label_selector"] == {"router-node": "node_b"}
    assert emb["fallback_strategy"] == [{"label_selector": {"router-node": "head"}}]
    assert "resources" not in emb  # a custom resource would pin it hard: no restart after losing node_b
    for name in ("Scorer", "Dispatcher"):
        assert deps[name]["ray_actor_options"]["label_selector"] == {"router-node": "head"}
    for d in deps.values():
        assert d["num_replicas"] == 1 and "autoscaling_config" not in d


def _fake_output(out, good, bad, dup=None, drop=None):
    (out / "decisions").mkdir(parents=True)
    ids = [i for i in sorted(good) if i != drop] + ([dup] if dup else [])
    pd.DataFrame([{"id": i, "lambda": lam} for i in ids for lam in LAMBDAS]).to_parquet(out / "decisions" / "part.parquet")
    (out / "quarantine.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in sorted(bad)))
    routed = len(set(ids))
    (out / "summary.json").write_text(json.dumps({"rows_read": len(good) + len(bad), "rows_routed": routed, "rows_quarantined": len(bad)}))


def test_checker_sees_a_row_written_twice_and_a_row_missing(tmp_path):
    good, bad = write_logs(tmp_path / "logs", [f"prompt {i}" for i in range(150)], files=3)
    assert len(good) + len(bad) == 150 and len(bad) == 3 and not good & bad
    assert len(list((tmp_path / "logs").glob("*.jsonl"))) == 3

    _fake_output(tmp_path / "ok", good, bad)
    ok = check_route_logs_output(tmp_path / "ok", good, bad)
    assert ok["every_good_id_once_per_lambda"] and ok["rows_written_twice"] == 0 and ok["quarantine_exact"]
    assert ok["read_eq_routed_plus_quarantined"]

    some = sorted(good)[5]
    _fake_output(tmp_path / "dup", good, bad, dup=some)
    dup = check_route_logs_output(tmp_path / "dup", good, bad)
    assert dup["rows_written_twice"] == len(LAMBDAS) and not dup["every_good_id_once_per_lambda"]

    _fake_output(tmp_path / "drop", good, bad, drop=some)
    drop = check_route_logs_output(tmp_path / "drop", good, bad)
    assert drop["good_ids_missing"] == 1 and not drop["every_good_id_once_per_lambda"]
    assert not drop["read_eq_routed_plus_quarantined"]
