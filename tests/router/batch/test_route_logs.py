"""route-logs end to end on tiny logs: every input row is either routed (once per λ) or in the
quarantine with its reason; both prompt formats; JSONL and Parquet; refusal of a used --out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import ray

from router.batch.pipeline import RouteLogsConfig, route_logs

pytestmark = pytest.mark.ray


def _quarantine(path):
    return [json.loads(line) for line in open(path)]


def test_jsonl_with_broken_rows_and_several_lambdas(ray_session, tiny_artifact, log_jsonl, tmp_path):
    out = tmp_path / "out"
    lams = [0.0, 1.0, 100.0]
    summary = route_logs(RouteLogsConfig(artifact=tiny_artifact, input=str(log_jsonl), out=str(out), lambdas=lams,
                                         cache_dir=str(tmp_path / "cache")))  # fmt: skip
    assert summary["rows_read"] == 10
    assert summary["rows_routed"] == 5 and summary["rows_quarantined"] == 5
    decisions = pd.read_parquet(out / "decisions")
    assert len(decisions) == 5 * len(lams) == summary["rows_written"]
    assert sorted(decisions["lambda"].unique()) == lams
    assert set(decisions["id"]) == {"r0", "r1", "r2", "r3", "a.jsonl:5"}
    models = summary["models"]
    for m in models:
        assert decisions[f"quality[{m}]"].between(0, 1).all() and (decisions[f"cost[{m}]"] >= 0).all()
    # the chosen model's columns are that model's predictions
    for _, row in decisions.iterrows():
        assert row["quality"] == pytest.approx(row[f"quality[{row['model']}]"])
        assert row["cost"] == pytest.approx(row[f"cost[{row['model']}]"])
    # the same decisions as the router in this process (one implementation of embed -> predict -> decide)
    from router.core import Router
    from tests.router.batch.conftest import GOOD_PROMPTS

    texts = {f"r{i}": p for i, p in enumerate(GOOD_PROMPTS[:4])}
    for lam in lams:
        here = Router.load(tiny_artifact).route(list(texts.values()), lam=lam)
        got = decisions[decisions["lambda"] == lam].set_index("id")
        for (rid, _), d in zip(texts.items(), here):
            assert got.loc[rid, "model"] == d.model and got.loc[rid, "reward"] == pytest.approx(d.reward[d.model])
    # a larger λ never picks a more expensive model for the same prompt (linear reward)
    by = decisions.pivot(index="id", columns="lambda", values="cost")
    assert (by[100.0] <= by[0.0] + 1e-12).all()
    reasons = {q["line"]: q["reason"] for q in _quarantine(out / "quarantine.jsonl")}
    assert sorted(reasons) == [6, 7, 8, 9, 10]
    assert reasons[6].startswith("not JSON")
    assert "no prompt field" in reasons[7]
    assert "empty" in reasons[8]
    assert "int" in reasons[9]
    assert "not an object" in reasons[10]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["rows_quarantined"] == 5
    first = saved["per_lambda"][0]
    assert sum(first["share"].values()) == pytest.approx(1.0)
    assert first["predicted_total_cost"] == pytest.approx(decisions[decisions["lambda"] == 0.0]["cost"].sum())


def test_parquet_messages_and_glob_over_mixed_formats(ray_session, tiny_artifact, log_messages_parquet, tmp_path):
    out = tmp_path / "out"
    quarantine = tmp_path / "bad" / "q.jsonl"
    summary = route_logs(RouteLogsConfig(artifact=tiny_artifact, input=str(log_messages_parquet.parent / "*.parquet"),
                                         out=str(out), prompt_field="messages", id_field="request_id",
                                         lambdas=[0.5, 5.0], reward="exponential", quarantine=str(quarantine),
                                         cache_dir=str(tmp_path / "cache")))  # fmt: skip
    assert (summary["rows_routed"], summary["rows_quarantined"]) == (3, 2)
    decisions = pd.read_parquet(out / "decisions")
    assert len(decisions) == 6 and set(decisions["id"]) == {"m0", "m1", "m2"}
    assert set(decisions["reward_type"]) == {"exponential"}
    reasons = sorted(q["reason"] for q in _quarantine(quarantine))
    assert reasons == ["messages contain no text to route on", "no id field 'request_id'"]


def test_timeline_says_where_the_time_went(ray_session, tiny_artifact, log_jsonl, tmp_path):
    from load_tests.bench_route_logs import breakdown

    timeline = tmp_path / "timeline.jsonl"
    route_logs(RouteLogsConfig(artifact=tiny_artifact, input=str(log_jsonl), out=str(tmp_path / "out"), batch_size=2,
                               cache_dir=str(tmp_path / "cache"), timeline=str(timeline)))  # fmt: skip
    events = [json.loads(line) for line in timeline.read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "run_start" and names[-1] == "run_end"
    assert names.index("actor_start") < names.index("actor_ready") < names.index("batch")
    batches = [e for e in events if e["event"] == "batch"]
    assert sum(e["rows"] for e in batches) == 5 and len(batches) == 3  # 5 good rows in batches of 2
    assert all(e["embed_s"] >= 0 and e["decide_s"] >= 0 for e in batches)
    assert {e["pid"] for e in batches} != {events[0]["pid"]}  # batches ran in the pool's actor, not the driver
    phases = breakdown(timeline)
    assert phases["batches"] == 3
    assert all(e["cpu_s"] > 0 for e in batches) and phases["pool_cpu_s"] >= max(e["cpu_s"] for e in batches)
    parts = phases["until_actor_start_s"] + phases["actor_start_s"] + phases["embed_s"] + phases["decide_s"]
    assert 0 < parts <= phases["total_s"]


def test_a_pool_shares_one_file(ray_session, tiny_artifact, tmp_path):
    """One input file is one Ray Data block unless cut: a 2-actor pool must still give both actors
    batches, and route every row once."""
    src = tmp_path / "one.jsonl"
    src.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i} about topic {i % 7}"}) + "\n" for i in range(600)))
    timeline = tmp_path / "timeline.jsonl"
    summary = route_logs(RouteLogsConfig(artifact=tiny_artifact, input=str(src), out=str(tmp_path / "out"), actors=2, threads=1,
                                         batch_size=512, cache_dir=str(tmp_path / "cache"), timeline=str(timeline)))  # fmt: skip
    assert summary["rows_routed"] == 600
    events = [json.loads(line) for line in timeline.read_text().splitlines()]
    unit = next(e for e in events if e["event"] == "unit_start")
    assert (unit["actors"], unit["threads"]) == (2, 1) and unit["batch"] < 512  # shrunk so both actors get batches
    batches = [e for e in events if e["event"] == "batch"]
    assert sum(e["rows"] for e in batches) == 600 and len({e["pid"] for e in batches}) == 2
    ids = pd.read_parquet(tmp_path / "out" / "decisions")["id"]
    assert ids.nunique() == 600 and len(ids) == 600


def test_pool_plan_fits_the_cluster(ray_session):
    from router.batch.pipeline import pool_plan

    cpus = int(ray.cluster_resources()["CPU"])
    assert pool_plan(None, None, gpu=False) == (1, cpus)  # default: one actor with every CPU's thread
    assert pool_plan(cpus + 3, None, gpu=False) == (cpus, 1)  # never more actors than CPUs
    assert pool_plan(1, 3, gpu=False) == (1, 3)
    if not ray.cluster_resources().get("GPU"):
        with pytest.raises(ValueError, match="--gpu: the Ray cluster has no GPU"):
            pool_plan(None, None, gpu=True)


def test_messages_route_like_their_user_text(ray_session, tiny_artifact, tmp_path):
    """A conversation is routed exactly like the plain text of its user turn."""
    text = "code question: python function with a bug in the loop"
    rows = [
        {"id": "plain", "prompt": text},
        {"id": "chat", "prompt": [{"role": "system", "content": "x"}, {"role": "user", "content": [{"type": "text", "text": text}]}]},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    route_logs(RouteLogsConfig(artifact=tiny_artifact, input=str(src), out=str(tmp_path / "out"), cache_dir=str(tmp_path / "c")))
    d = pd.read_parquet(tmp_path / "out" / "decisions").set_index("id")
    assert d.loc["plain", "model"] == d.loc["chat", "model"]
    assert d.loc["plain", "reward"] == pytest.approx(d.loc["chat", "reward"])


def test_refuses_non_empty_out_unless_overwrite(tmp_path):
    """A used --out is refused (or, with overwrite, replaced only once the new output is complete);
    an interrupted run's staging folder is refused unless resumed or overwritten."""
    from router.batch.pipeline import prepare_output

    out = tmp_path / "out"
    out.mkdir()
    (out / "old.parquet").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        prepare_output(str(out), overwrite=False)
    paths = prepare_output(str(out), overwrite=True)
    assert (out / "old.parquet").exists()  # still there: replaced only by a complete output
    assert paths.staging == str(out) + ".partial" and (tmp_path / "out.partial" / "decisions").is_dir()
    prepare_output(str(tmp_path / "b"))
    with pytest.raises(ValueError, match="--resume"):  # b.partial is an interrupted run now
        prepare_output(str(tmp_path / "b"))
    assert prepare_output(str(tmp_path / "b"), resume=True).staging == str(tmp_path / "b.partial")
    with pytest.raises(ValueError, match="pass one of them"):
        prepare_output(str(tmp_path / "new"), overwrite=True, resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        prepare_output(str(tmp_path / "file"), overwrite=True)
    (out / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="complete already"):
        prepare_output(str(out), resume=True)


def _three_logs(tmp_path):
    """Three JSONL files of good and broken rows (ids repeat across files: ids need not be unique)."""
    from tests.router.batch.conftest import GOOD_PROMPTS

    folder = tmp_path / "logs"
    folder.mkdir()
    for f in range(3):
        lines = [json.dumps({"id": f"r{i}", "prompt": f"{p} (file {f})"}) for i, p in enumerate(GOOD_PROMPTS)]
        lines += ["{broken", json.dumps({"id": "x", "prompt": ""})]
        (folder / f"part-{f}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def _fake_half_unit(staging):
    """What a run killed while writing a unit leaves: rows under decisions/.tmp-<unit>."""
    half = staging / "decisions" / ".tmp-unit-0000000000000000"
    half.mkdir()
    pd.DataFrame({"id": ["r0"], "lambda": [1.0], "model": ["bogus"]}).to_parquet(half / "x.parquet")


def test_killed_run_resumed_gives_the_uninterrupted_decisions(ray_session, tiny_artifact, tmp_path):
    """A run stopped after its first unit leaves nothing at --out; --resume routes only the other
    files and ends with exactly the decisions of an uninterrupted run, no row twice."""
    logs = _three_logs(tmp_path)
    common = dict(artifact=tiny_artifact, input=str(logs), lambdas=[0.0, 10.0], cache_dir=str(tmp_path / "cache"))
    whole = route_logs(RouteLogsConfig(out=str(tmp_path / "whole"), files_per_unit=3, **common))

    class Killed(Exception):
        pass

    def kill(unit):
        raise Killed(unit["unit"])

    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        route_logs(RouteLogsConfig(out=str(out), files_per_unit=1, **common), on_unit_done=kill)
    staging = tmp_path / "resumed.partial"
    assert not out.exists() and staging.is_dir()  # nothing that looks complete
    (unit,) = [d for d in (staging / "decisions").iterdir() if d.name.startswith("unit-")]
    assert [f["path"].rsplit("/", 1)[1] for f in json.loads((unit / "_unit.json").read_text())["files"]] == ["part-0.jsonl"]
    _fake_half_unit(staging)
    with pytest.raises(ValueError, match="--resume"):  # a plain re-run does not mix with the leftovers
        route_logs(RouteLogsConfig(out=str(out), **common))
    with pytest.raises(ValueError, match="lambdas"):  # a resume must decide the same way
        route_logs(RouteLogsConfig(out=str(out), resume=True, **{**common, "lambdas": [1.0]}))

    resumed = route_logs(RouteLogsConfig(out=str(out), resume=True, files_per_unit=2, **common))
    assert not staging.exists() and (out / "summary.json").is_file()
    assert resumed["files_resumed"] == 1 and resumed["units"] == 2
    for key in ("rows_read", "rows_routed", "rows_quarantined", "rows_written"):
        assert resumed[key] == whole[key], key
    assert (whole["rows_routed"], whole["rows_quarantined"]) == (15, 6)

    def decisions(folder):
        d = pd.read_parquet(folder / "decisions")
        return d.sort_values(["source", "line", "lambda"]).reset_index(drop=True)

    a, b = decisions(tmp_path / "whole"), decisions(out)
    assert not b.duplicated(["source", "line", "lambda"]).any() and len(b) == 15 * 2
    assert "bogus" not in set(b["model"])
    assert (a[["id", "source", "line", "lambda", "model"]] == b[["id", "source", "line", "lambda", "model"]]).all().all()
    assert np.allclose(a["reward"], b["reward"]) and np.allclose(a["cost"], b["cost"])
    qa = _quarantine(tmp_path / "whole" / "quarantine.jsonl")
    qb = _quarantine(out / "quarantine.jsonl")
    assert qa == qb and len(qa) == 6
    assert not list(out.glob("decisions/*/_quarantine.jsonl"))  # merged into one file, not kept twice


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="lambda"):
        RouteLogsConfig(artifact="a", input="i", out="o", lambdas=[-1.0])
    with pytest.raises(ValueError, match="reward"):
        RouteLogsConfig(artifact="a", input="i", out="o", reward="nope")
