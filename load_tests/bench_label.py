"""Benchmark: ``router label`` on 500 prompts against the stand-in backend (a TEST DOUBLE): three pool
models answering in 200-800 ms each, and the stand-in judge (same latencies) grading every answer.

    python -m load_tests.bench_label --rows 500 --out results/label/bench_label.json --update-md

The stand-in runs in this process (its own thread and event loop); ``router label`` runs through its
CLI entry point with a local Ray of ``--num-cpus`` CPUs, timed end to end (Ray start, read and
parse, fan-out, grading, table and summary). Goal: under 120 s, with no backend ever holding more
requests in flight than its concurrency limit (checked on both sides: the stand-in counts the
requests it is serving at once, the labeller's limiter counts the ones it let through).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from load_tests.common import machine_info, print_table, update_benchmarks_md, write_json

SECTION = "label"
GOAL_S = 120.0


def run(rows: int, concurrency: int, judge_concurrency: int, latency: tuple[float, float], num_cpus: int) -> dict:
    from router.cli.main import main
    from serve_app.testing import label_demo
    from serve_app.testing.stub_backend import Behaviour, StubBackend, load_answer_key

    with tempfile.TemporaryDirectory(prefix="bench-label-") as tmp:
        tmp = Path(tmp)
        logs = label_demo.write_logs(tmp / "logs.jsonl", label_demo.demo_log_rows(rows), malformed=False)
        stub = StubBackend(Behaviour(skills=label_demo.SKILLS, answer_key=load_answer_key(str(logs), "messages", "task"),
                                     default_latency_ms=latency))  # fmt: skip
        port = stub.start_in_thread()
        try:
            backends = label_demo.write_backends(tmp / "backends.yaml", port)
            judge = label_demo.write_judge(tmp / "judge.yaml", port, concurrency=judge_concurrency)
            out = tmp / "mine.parquet"
            t0 = time.perf_counter()
            code = main(["label", "--input", str(logs), "--prompt-field", "messages", "--eval-field", "task",
                         "--backends", str(backends), "--judge", str(judge), "--out", str(out), "--max-tokens", "64",
                         "--concurrency", str(concurrency), "--no-progress", "--num-cpus", str(num_cpus)])  # fmt: skip
            seconds = time.perf_counter() - t0
            summary = json.loads((tmp / "mine.label" / "label_summary.json").read_text())
        finally:
            stub.stop_thread()
    starts = {m: v for m, v in stub.started.items()}
    by_backend = summary["calls"]["by_backend"]
    per = []
    for name, stats in by_backend.items():
        served_as = label_demo.JUDGE_MODEL if name == "judge" else name
        span = (max(starts[served_as]) - min(starts[served_as])) if starts.get(served_as) else 0.0
        per.append({
            "backend": name, "calls": stats["attempts"], "ok": stats["ok"], "limit": stats["concurrency_limit"],
            "max_in_flight_labeller": stats["max_in_flight"], "max_in_flight_stub": stub.max_in_flight[served_as],
            "calls_per_s": round(stats["attempts"] / span, 1) if span else None,
        })  # fmt: skip
    return {
        "exit_code": code,
        "seconds": seconds,
        "rows": rows,
        "labelled": summary["rows"]["labelled"],
        "calls": sum(p["calls"] for p in per),
        "latency_ms": list(latency),
        "limits_respected": all(p["max_in_flight_stub"] <= p["limit"] and p["max_in_flight_labeller"] <= p["limit"] for p in per),
        "answered_twice": sum(n > 1 for n in stub.answered.values()),
        "per_backend": per,
        "label_seconds": summary["seconds"],
        "spend_usd": summary["spend"]["total_usd"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_label", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=16, help="per pool backend")
    p.add_argument("--judge-concurrency", type=int, default=32)
    p.add_argument("--latency-ms", default="200-800")
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--out", default="results/label/bench_label.json")
    p.add_argument("--update-md", action="store_true")
    args = p.parse_args(argv)
    lo, hi = (float(x) for x in args.latency_ms.split("-"))
    r = run(args.rows, args.concurrency, args.judge_concurrency, (lo, hi), args.num_cpus)
    info = machine_info()
    load1 = os.getloadavg()[0]
    result = {"machine": info, "load1_after": load1, "goal_s": GOAL_S, **r}
    write_json(result, args.out)
    table = print_table(f"router label: {r['rows']} prompts x 3 models + judge, latencies {args.latency_ms} ms", r["per_backend"])
    verdict = "PASS" if r["seconds"] < GOAL_S and r["limits_respected"] and r["exit_code"] == 0 and r["answered_twice"] == 0 else "FAIL"
    line = (f"{verdict}: {r['labelled']} of {r['rows']} prompts labelled, {r['calls']} calls in {r['seconds']:.1f} s end to end "
            f"(goal < {GOAL_S:.0f} s); limits respected: {r['limits_respected']}; calls answered twice: {r['answered_twice']}")  # fmt: skip
    print(line)
    if args.update_md:
        cmd = (f"python -m load_tests.bench_label --rows {args.rows} --concurrency {args.concurrency} --judge-concurrency "
               f"{args.judge_concurrency} --latency-ms {args.latency_ms} --out {args.out} --update-md")  # fmt: skip
        body = (f"## router label: 500 prompts against the stand-in backends\n\n"
                f"Command: `{cmd}` ({info['date_utc']} UTC, {info['cpus']} CPUs, load1 after the run {load1:.1f}).\n"
                "The stand-in backend (a TEST DOUBLE, in the benchmark's process) plays three pool models and the judge, each "
                f"answering in {args.latency_ms} ms (drawn per prompt); `router label` runs through its CLI with a local Ray, "
                "timed end to end (Ray start, read, fan-out, judge grading of every answer, table, summary). "
                "`max in flight` is counted on both sides (the stand-in's concurrent requests, the labeller's limiter).\n"
                f"Raw JSON: `{args.out}`.\n{table}\n{line}\n")  # fmt: skip
        update_benchmarks_md(body, section=SECTION)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
