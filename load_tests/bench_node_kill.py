"""Benchmark: losing a node of a real two-node Ray cluster on 127.0.0.1 in the middle of work.

    python -m load_tests.bench_node_kill --out results/node_kill --update-md     # real encoder
    python -m load_tests.bench_node_kill --out /tmp/nk --encoder hash --rows 300  # smoke, model-free

Each part starts its own ``LocalCluster`` (head + ``node_b``, each its own ``ray start`` and temp
dir), kills every process of ``node_b`` at once with SIGKILL (a lost machine) while it works, and
checks what the issue asks. Ray's own node-death detection is left at its defaults here (the
tests shorten it), so the times are what a real cluster would see.

1. ``serve``: ``serve run`` with the Embedder on ``node_b`` (label, falling back to the head) and
   the rest on the head. /v1/route must answer as the artifact does in-process
   (``router.core.Router``) before and after; reported: the gap from the kill to the first 200,
   and what the callers got in between (a request every 0.5 s with a 2 s deadline).
2. ``route_logs``: ``router route-logs --ray-address`` with ``--actors 3`` (1 CPU each, 2 CPUs per
   node: the pool needs both nodes) over several JSONL files with broken rows, one unit per file,
   ``node_b`` killed once its actor has started. A run that fails is finished with ``--resume``
   (said in the result). Checked from the output files: rows read = routed + quarantined, every
   good input id routed exactly once per λ, every broken one quarantined once.
3. ``tune``: ``router tune --ray-address`` (1 CPU per trial and per node: one trial on each node at a
   time), ``node_b`` killed while one of its trials runs. Checked: the command succeeds, every
   trial is in results.json (the lost one as an error), best_config.yaml loads as a TrainConfig.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load_tests.cluster import free_port
from load_tests.common import Timer, machine_info, print_table, update_benchmarks_md, write_json
from load_tests.local_cluster import LocalCluster, cluster_env

SECTION = "node-kill"
LAMBDAS = (0.1, 1.0, 10.0)
TRIAL_MARKER = ":actor_name:_trial"
ROUTE_MARKER = "RouteBatches"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "router.cli.main", *args]


def _wait_for_marker(cluster: LocalCluster, node: str, marker: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> float:
    """Seconds until a worker of ``node`` logs ``marker`` while ``proc`` still runs (else an error)."""
    t0 = time.monotonic()
    while node not in cluster.nodes_running(marker):
        if proc.poll() is not None:
            raise RuntimeError(f"the command ended (rc {proc.returncode}) before {marker} ran on {node}: {log.read_text()[-1500:]}")
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"{marker} not running on {node} after {timeout_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - t0


# -- 1. Serve ------------------------------------------------------------------------------------
def serve_part(artifact: str, backends: str, work: Path, prompts: list[str]) -> dict:
    from load_tests.multinode import EMBEDDER_LOG_MARKER, decisions, fallback_head_cpus, kill_and_wait_for_answers, route, serve_config, serve_run
    from router.core import Router

    local = Router.load(artifact)
    expected = {lam: [(d.model, d.quality, d.cost) for d in local.route(prompts, lam=lam)] for lam in LAMBDAS}

    def same(body, lam) -> bool:
        got = decisions(body)
        return len(got) == len(expected[lam]) and all(
            m == em and all(abs(s[k][0] - eq[k]) <= 1e-5 * max(1.0, abs(eq[k])) and abs(s[k][1] - ec[k]) <= 1e-5 * max(1e-9, abs(ec[k])) for k in eq)
            for (m, s), (em, eq, ec) in zip(got, expected[lam]))  # fmt: skip

    app_args = {"artifact_path": artifact, "backends_file": backends, "embedder_threads": 1}
    config = serve_config(app_args, free_port())
    # Room on the head for the Embedder's fallback (a 1-CPU head left it none: all 504s for 300 s).
    with LocalCluster(head_cpus=fallback_head_cpus(config)) as cluster, Timer() as t_all:
        cluster.add_node("node_b", num_cpus=1)
        with serve_run(cluster, config, work / "serve", timeout_s=400) as url:
            before = [route(url, prompts, lam, timeout_ms=30000) for lam in LAMBDAS]
            placed = sorted(cluster.nodes_running(EMBEDDER_LOG_MARKER))
            out = kill_and_wait_for_answers(cluster, "node_b", url, prompts, 1.0, timeout_s=300)
            after = [route(url, prompts, lam, timeout_ms=30000) for lam in LAMBDAS]
            placed_after = sorted(cluster.nodes_running(EMBEDDER_LOG_MARKER))
    return {
        "embedder_on_before_kill": placed,
        "embedder_on_after_kill": placed_after,
        "matches_in_process_before": all(s == 200 and same(b, lam) for (s, b), lam in zip(before, LAMBDAS)),
        "gap_s": out["gap_s"],
        "answers_during_gap": out["statuses"],
        "non_2xx_other_than_503_504": sum(n for s, n in out["statuses"].items() if s not in ("503", "504")),
        "matches_in_process_after": all(s == 200 and same(b, lam) for (s, b), lam in zip(after, LAMBDAS)),
        "seconds": round(t_all.seconds, 1),
    }


# -- 2. route-logs -------------------------------------------------------------------------------
def write_logs(folder: Path, prompts: list[str], files: int) -> tuple[set[str], set[str]]:
    """``files`` JSONL files of ``prompts`` (ids ``f<k>-<i>``) with a broken row every 50th line;
    returns (good ids, broken ids)."""
    folder.mkdir(parents=True, exist_ok=True)
    good, bad = set(), set()
    per = -(-len(prompts) // files)
    for k in range(files):
        lines = []
        for i, p in enumerate(prompts[k * per : (k + 1) * per]):
            rid = f"f{k}-{i}"
            if i % 50 == 49:
                lines.append(json.dumps({"id": rid, "prompt": ""}))  # empty prompt: quarantined
                bad.add(rid)
            else:
                lines.append(json.dumps({"id": rid, "prompt": p}))
                good.add(rid)
        (folder / f"part-{k:02d}.jsonl").write_text("\n".join(lines) + "\n")
    return good, bad


def check_route_logs_output(out: Path, good: set[str], bad: set[str]) -> dict:
    import pandas as pd

    summary = json.loads((out / "summary.json").read_text())
    dec = pd.read_parquet(out / "decisions", columns=["id", "lambda"])
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines() if line.strip()]
    q_ids = [q["id"] for q in quarantine]
    per_id = dec.groupby(["id", "lambda"]).size()
    return {
        "rows_read": summary["rows_read"],
        "rows_routed": summary["rows_routed"],
        "rows_quarantined": summary["rows_quarantined"],
        "read_eq_routed_plus_quarantined": summary["rows_read"] == summary["rows_routed"] + summary["rows_quarantined"],
        "decisions_written": int(len(dec)),
        "rows_written_twice": int((per_id > 1).sum()),
        "good_ids_missing": len(good - set(dec["id"])),
        "unexpected_ids": len(set(dec["id"]) - good),
        "every_good_id_once_per_lambda": bool(set(per_id.index) == {(i, lam) for i in good for lam in LAMBDAS} and (per_id == 1).all()),
        "quarantine_exact": sorted(q_ids) == sorted(bad),
        "input_rows": len(good) + len(bad),
    }


def route_logs_part(artifact: str, work: Path, prompts: list[str], files: int, kill_after_s: float) -> dict:
    logs = work / "logs"
    good, bad = write_logs(logs, prompts, files)
    out = work / "routed"
    base = ["route-logs", "--artifact", artifact, "--input", str(logs), "--out", str(out), "--actors", "3", "--threads", "1",
            "--batch-size", "64", "--files-per-unit", "1", "--lambda", ",".join(map(str, LAMBDAS)), "--no-cache"]  # fmt: skip
    result: dict = {"files": files, "kill_after_actor_start_s": kill_after_s}
    with LocalCluster(head_cpus=2) as cluster, Timer() as t_all:
        cluster.add_node("node_b", num_cpus=2)
        log = work / "route_logs.log"
        with open(log, "w") as f:
            proc = subprocess.Popen(_cli(*base, "--ray-address", cluster.address), stdout=f, stderr=subprocess.STDOUT, env=cluster_env())
        try:
            started = _wait_for_marker(cluster, "node_b", ROUTE_MARKER, proc, log, 300)
            time.sleep(kill_after_s)
            result["running_at_kill"] = proc.poll() is None
            result["units_done_at_kill"] = len([p for p in (work / "routed.partial" / "decisions").glob("unit-*")]) if (work / "routed.partial").exists() else None
            result["actors_on"] = sorted(cluster.nodes_running(ROUTE_MARKER))
            t_kill = time.monotonic()
            cluster.nodes[-1].kill()
            rc = proc.wait(timeout=900)
            result["after_kill_s"] = round(time.monotonic() - t_kill, 1)
        finally:
            if proc.poll() is None:
                proc.kill()
        result.update({"first_run_rc": rc, "first_actor_on_node_b_after_s": round(started, 1)})
        if rc != 0:
            result["first_run_error"] = [ln for ln in log.read_text().splitlines() if "Error" in ln][-3:]
            with open(work / "route_logs_resume.log", "w") as f:
                result["resume_rc"] = subprocess.run(_cli(*base, "--ray-address", cluster.address, "--resume"), stdout=f,
                                                     stderr=subprocess.STDOUT, env=cluster_env(), timeout=900).returncode  # fmt: skip
    result["seconds"] = round(t_all.seconds, 1)
    if (out / "summary.json").exists():
        result.update(check_route_logs_output(out, good, bad))
    return result


# -- 3. tune -------------------------------------------------------------------------------------
def tune_part(encoder: str, data: Path, work: Path, samples: int, max_epochs: int) -> dict:
    out = work / "tune"
    cmd = _cli("tune", "--data", str(data), "--split", "all", "--encoder", encoder, "--out", str(out), "--num-samples", str(samples),
               "--max-epochs", str(max_epochs), "--grace-period", str(max_epochs), "--cpus-per-trial", "1")  # fmt: skip
    result: dict = {"samples": samples, "max_epochs": max_epochs}
    with LocalCluster(head_cpus=1) as cluster, Timer() as t_all:
        cluster.add_node("node_b", num_cpus=1)
        log = work / "tune.log"
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd + ["--ray-address", cluster.address], stdout=f, stderr=subprocess.STDOUT, env=cluster_env())
        try:
            _wait_for_marker(cluster, "node_b", TRIAL_MARKER, proc, log, 600)
            result["running_at_kill"] = proc.poll() is None
            cluster.nodes[-1].kill()
            result["rc"] = proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
        result["trials_on"] = sorted(cluster.nodes_running(TRIAL_MARKER))
    result["seconds"] = round(t_all.seconds, 1)
    if (out / "results.json").exists():
        from router.model.config import load_train_config

        trials = json.loads((out / "results.json").read_text())["trials"]
        result["trials"] = {s: sum(t["status"] == s for t in trials) for s in sorted({t["status"] for t in trials})}
        result["every_trial_recorded"] = len(trials) == samples
        load_train_config(out / "best_config.yaml")
        result["best_config_loads"] = True
        result["best_holdout_aiq"] = json.loads((out / "results.json").read_text())["best"]["holdout_aiq"]
    return result


# -- all -----------------------------------------------------------------------------------------
def run(work: Path, encoder: str = "minilm", rows: int = 2000, files: int = 4, kill_after_s: float = 5.0,
        tune_rows: int = 600, samples: int = 4, max_epochs: int = 4, artifact: str | None = None) -> dict:  # fmt: skip
    """Every part; ``artifact`` (built here when None) must come from ``encoder``."""
    import yaml

    from load_tests.artifacts import ENCODERS, build_artifact
    from router.data import load_table
    from serve_app.testing.stub_backend import StubBackend

    work.mkdir(parents=True, exist_ok=True)
    if artifact is None:
        artifact = str(build_artifact(work / "artifact", encoder, epochs=2))
    table = load_table("routellm")
    prompts = list(dict.fromkeys(table.prompts))[:rows]
    res: dict = {"machine": machine_info(), "settings": {"encoder": ENCODERS[encoder], "rows": rows, "files": files, "lambdas": list(LAMBDAS),
                                                          "kill_after_s": kill_after_s, "tune_rows": tune_rows, "samples": samples,
                                                          "max_epochs": max_epochs}}  # fmt: skip
    stub = StubBackend()  # TEST DOUBLE for the pool's LLMs: /v1/route never calls it, the app needs a backends file
    port = stub.start_in_thread()
    try:
        from router.model.artifact import load_artifact

        backends = work / "backends.yaml"
        backends.write_text(yaml.safe_dump({"backends": [{"model": m, "base_url": f"http://127.0.0.1:{port}/v1"}
                                                         for m in load_artifact(artifact).models]}))  # fmt: skip
        for name, fn in (("serve", lambda: serve_part(artifact, str(backends), work, prompts[:4])),
                         ("route_logs", lambda: route_logs_part(artifact, work, prompts, files, kill_after_s)),
                         ("tune", lambda: tune_part(ENCODERS[encoder], _tune_table(work, encoder, tune_rows), work, samples, max_epochs))):  # fmt: skip
            try:
                res[name] = fn()
            except Exception as exc:  # noqa: BLE001 - one broken part must not lose the others' numbers
                res[name] = {"failed": f"{type(exc).__name__}: {exc}"[:2000]}
            print(f"[node-kill] {name}: {json.dumps(res[name], default=str)[:1500]}", flush=True)
    finally:
        stub.stop_thread()
    return res


def _tune_table(work: Path, encoder: str, rows: int) -> Path:
    """The first ``rows`` of the bundled dcrouter table (minilm) or a synthetic table (hash) as Parquet."""
    path = work / "tune_table.parquet"
    if encoder == "hash":
        from router.data.synthetic import make_synthetic_frame

        make_synthetic_frame(n=rows, seed=0).to_parquet(path)
    else:
        from router.data.io import read_frame

        read_frame("dcrouter").head(rows).to_parquet(path)
    return path


def render_markdown(res: dict, command: str) -> str:
    s = res["settings"]
    sv, rl, tu = res.get("serve", {}), res.get("route_logs", {}), res.get("tune", {})
    lines = [
        "## Losing a node (two-node Ray cluster on one machine)",
        "",
        f"`{command}` ({res['machine'].get('cpus')} CPUs shared with other work; encoder {s['encoder']}). Each part has its own "
        "two-node cluster (`load_tests/local_cluster.py`: `ray start --head` + `ray start --address`, each with its own temp "
        "dir, all on 127.0.0.1); `node_b` is killed with SIGKILL, every process at once, while it works. Ray's node-death "
        "detection is at its defaults.",
        "",
    ]
    if "failed" in sv:
        lines += [f"- **Serve**: failed: `{sv['failed']}`"]
    elif sv:
        lines += [f"- **Serve** (`serve run`, Embedder on {', '.join(sv['embedder_on_before_kill'])}, the rest on the head): /v1/route "
                  f"matched the artifact in-process before the kill: {sv['matches_in_process_before']}. After killing node_b the first "
                  f"200 came **{sv['gap_s']} s** later (answers in between: {sv['answers_during_gap'] or 'none'}; a request every "
                  f"0.5 s with a 2 s deadline), from an Embedder restarted on {', '.join(x for x in sv['embedder_on_after_kill'] if x != 'node_b') or '?'}; "
                  f"answers matched again: {sv['matches_in_process_after']}."]  # fmt: skip
    if "failed" in rl:
        lines += [f"- **route-logs**: failed: `{rl['failed']}`"]
    elif rl:
        resumed = "" if rl.get("first_run_rc") == 0 else f" The killed run exited {rl['first_run_rc']}; `--resume` exited {rl.get('resume_rc')}."
        lines += [f"- **route-logs** ({rl.get('input_rows')} rows in {rl['files']} files, one unit each, `--actors 3` on "
                  f"{', '.join(rl.get('actors_on', []))}, node_b killed {rl['kill_after_actor_start_s']} s after its actor started, "
                  f"{rl.get('units_done_at_kill')} unit(s) committed by then; the later units start with the actors that fit the "
                  f"head's 2 CPUs, i.e. 2; reading, parsing and writing take no CPU): exit {rl['first_run_rc']}, {rl['after_kill_s']} s after the kill.{resumed} Rows read {rl.get('rows_read')} = routed {rl.get('rows_routed')} "
                  f"+ quarantined {rl.get('rows_quarantined')}: {rl.get('read_eq_routed_plus_quarantined')}; decisions "
                  f"{rl.get('decisions_written')}, rows written twice: **{rl.get('rows_written_twice')}**, good ids missing "
                  f"{rl.get('good_ids_missing')}, every good id once per λ: {rl.get('every_good_id_once_per_lambda')}, quarantine "
                  f"exactly the broken rows: {rl.get('quarantine_exact')}."]  # fmt: skip
    if "failed" in tu:
        lines += [f"- **tune**: failed: `{tu['failed']}`"]
    elif tu:
        lines += [f"- **tune** ({tu['samples']} trials of ≤ {tu['max_epochs']} epochs, 1 CPU each, on "
                  f"{', '.join(tu.get('trials_on', []))}, node_b killed during one of its trials): exit {tu.get('rc')}, trials "
                  f"{tu.get('trials')}, every trial recorded: {tu.get('every_trial_recorded')}, best_config.yaml loads: "
                  f"{tu.get('best_config_loads')} (best holdout AIQ {_f4(tu.get('best_holdout_aiq'))})."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _f4(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/node_kill", help="folder for node_kill.json (default results/node_kill)")
    p.add_argument("--encoder", default="minilm", choices=["minilm", "hash"], help="minilm (the real encoder) or hash (smoke)")
    p.add_argument("--rows", type=int, default=2000, help="route-logs prompts (default 2000)")
    p.add_argument("--files", type=int, default=4, help="route-logs input files, one unit each (default 4)")
    p.add_argument("--kill-after", type=float, default=5.0, help="seconds between node_b's actor start and the kill (default 5)")
    p.add_argument("--update-md", action="store_true", help="rewrite the node-kill section of BENCHMARKS.md")
    p.add_argument("--from-json", default=None, help="do not measure: report (and --update-md) OUT/node_kill.json written earlier")
    args = p.parse_args(argv)
    path = Path(args.out) / "node_kill.json"
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        s = res["settings"]
        args.encoder = "hash" if s["encoder"].startswith("hash") else "minilm"
        args.rows, args.files, args.kill_after = s["rows"], s["files"], s["kill_after_s"]
    else:
        with tempfile.TemporaryDirectory(prefix="bench-node-kill-") as tmp:
            res = run(Path(tmp), args.encoder, args.rows, args.files, args.kill_after)
        write_json(res, path)
    command = f"python -m load_tests.bench_node_kill --out {args.out} --encoder {args.encoder} --rows {args.rows} --files {args.files} --kill-after {args.kill_after}"
    md = render_markdown(res, command)
    for part in ("serve", "route_logs", "tune"):
        print_table(f"node kill: {part}", [{k: v for k, v in res.get(part, {}).items() if not isinstance(v, (dict, list))}])
    print(md)
    if args.update_md:
        update_benchmarks_md(md, section=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
