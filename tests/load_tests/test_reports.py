"""The pure parts of the benchmark and fault scripts: option layering, kill reports, fuzz verdicts,
tables and the BENCHMARKS.md section (no Ray, no server)."""

from __future__ import annotations

import pytest

from load_tests.cluster import merge_options
from load_tests.common import format_table, replace_section, update_benchmarks_md
from load_tests.faults import _kill_report
from load_tests.fuzz import CHAT, ROUTE, Case, _bad, fixed_cases
from load_tests.generator import LoadConfig, Record, summarize


def test_merge_options_layers_and_replica_modes():
    config = {"Embedder": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 4}, "max_ongoing_requests": 64}}
    fixed = merge_options(config, {"Embedder": {"num_replicas": 1}})
    assert fixed["Embedder"] == {"num_replicas": 1, "max_ongoing_requests": 64}
    auto = merge_options({"Embedder": {"num_replicas": 2}}, {"Embedder": {"autoscaling_config": {"max_replicas": 2}}})
    assert auto["Embedder"] == {"autoscaling_config": {"max_replicas": 2}}
    cleared = merge_options(config, {"Embedder": {"autoscaling_config": None}})
    assert "autoscaling_config" not in cleared["Embedder"]
    assert merge_options(None, {"Scorer": {"user_config": {"a": 1}}}, {"Scorer": {"user_config": {"a": 2}}}) == {"Scorer": {"user_config": {"a": 2}}}


def _result(records, concurrency=4):
    config = LoadConfig(concurrency=concurrency, keep_records=True)
    return config, summarize(config, records, len(records), 10.0, started_at=100.0)


def test_kill_report_counts_failures_and_disruption():
    recs = [Record(start=i * 0.1, latency=0.05, status="200") for i in range(30)]  # before the kill at 3.0 s
    recs += [Record(start=2.95, latency=0.2, status="500"),  # in flight at the kill, failed
             Record(start=2.98, latency=4.0, status="200"),  # in flight, held until the replacement
             Record(start=3.3, latency=0.05, status="200")]
    config, res = _result(recs)
    rep = _kill_report(res, config, "Embedder", "SERVE_REPLICA::a#Embedder#x", 1, kill_at=3.0, replaced_s=3.5)
    assert rep["failed"] == 1 and rep["failed_by_status"] == {"500": 1}
    assert rep["in_flight_at_kill"] == 2 and rep["failed_within_in_flight"]
    assert rep["affected"] == 2
    assert rep["disruption_s"] == pytest.approx(2.98 + 4.0 - 3.0)
    assert rep["slow_threshold_ms"] == pytest.approx(500.0)
    assert rep["replacement_running_s"] == 3.5


def test_kill_report_flags_losses_beyond_in_flight():
    recs = [Record(start=1.0, latency=0.1, status="200"), Record(start=3.5, latency=0.01, status="500"),
            Record(start=3.6, latency=0.01, status="connection")]
    config, res = _result(recs)
    rep = _kill_report(res, config, "Scorer", "x", 1, kill_at=3.0, replaced_s=None)
    assert rep["failed"] == 2 and rep["in_flight_at_kill"] == 0
    assert rep["failed_within_in_flight"] is False


@pytest.mark.parametrize(
    "path,status,body,bad",
    [
        (ROUTE, "200", {}, None),
        (ROUTE, "400", {"error": {"message": "prompt is empty"}}, None),
        (ROUTE, "400", {"detail": "x"}, "400 without an error message"),
        (ROUTE, "422", None, "422 without an error message"),
        (ROUTE, "404", None, None),
        (ROUTE, "500", {"error": {"message": "boom"}}, "server error 500"),
        (ROUTE, "502", None, "server error 502"),
        (CHAT, "502", None, None),
        (CHAT, "503", None, None),
        (CHAT, "500", None, "server error 500"),
        (ROUTE, "timeout", None, "no HTTP answer (timeout)"),
    ],
)
def test_fuzz_verdicts(path, status, body, bad):
    assert _bad(Case(path, b"{}"), status, body) == bad


def test_fixed_fuzz_cases_cover_the_known_bad_inputs():
    bodies = [c.body for c in fixed_cases()]
    assert b'{"prompt": ""}' in bodies
    assert any(b"NaN" in b for b in bodies) and any(b"-1" in b for b in bodies)
    assert any(len(b) > 100_000 for b in bodies)  # oversized prompt
    assert {c.method for c in fixed_cases()} >= {"POST", "GET", "PUT"}


def test_format_table():
    text = format_table([{"a": 1, "b": 2.345678, "c": None}, {"a": "long value", "b": 12345.6, "c": float("nan")}])
    lines = text.splitlines()
    assert lines[0].startswith("| a ") and "|----" in lines[1].replace("-|-", "----")
    assert "2.35" in lines[2] and "12346" in lines[3] and lines[3].count(" - ") >= 1


def test_replace_section_keeps_other_sections(tmp_path):
    text = "# Benchmarks\n\n<!-- section:route-logs -->\ntheirs\n<!-- /section:route-logs -->\n"
    once = replace_section(text, "serve-bench", "mine v1")
    assert "theirs" in once and "<!-- section:serve-bench -->\nmine v1\n<!-- /section:serve-bench -->" in once
    twice = replace_section(once, "serve-bench", "mine v2")
    assert "mine v1" not in twice and "mine v2" in twice and "theirs" in twice
    assert twice.count("<!-- section:serve-bench -->") == 1 and twice.count("<!-- /section:serve-bench -->") == 1

    path = tmp_path / "BENCHMARKS.md"
    update_benchmarks_md("first", path)
    assert path.read_text().startswith("# Benchmarks")
    path.write_text(path.read_text() + "\n<!-- section:route-logs -->\nx\n<!-- /section:route-logs -->\n")
    update_benchmarks_md("second", path)
    final = path.read_text()
    assert "second" in final and "first" not in final and "route-logs" in final


def test_route_logs_cpu_groups_sort_processes_and_count_only_the_run():
    from load_tests.bench_route_logs import cpu_groups
    from load_tests.cluster import Proc

    def p(title, cpu_s, started=1, cmdline=None):
        return Proc(1, title, cpu_s, cmdline or title, started)

    raylet = "/x/ray/core/src/ray/raylet/raylet"
    before = {10: p("python", 5.0, cmdline="python bench.py"), 11: p("ray::_StatsActor", 1.0), 12: p("ray::IDLE", 2.0),
              13: p(raylet, 3.0), 16: p("ray::IDLE", 4.0)}  # fmt: skip
    after = {10: p("python", 7.5, cmdline="python bench.py"), 11: p("ray::_StatsActor", 2.5),
             # pid 12: the same process (same start), now a pool actor: only what it used since counts
             12: p("ray::MapWorker(MapBatches(RouteBatches))", 40.0),
             13: p(raylet, 3.5), 14: p("ray::ReadFiles", 0.75), 15: p("bash", 1.0, cmdline="bash -c x"),
             # pid 16 reused by a new process (another start): all of its CPU counts
             16: p("ray::IDLE", 0.5, started=9)}  # fmt: skip
    groups = cpu_groups(before, after, driver_pid=10)
    assert groups == {"pool actors": 38.0, "driver": 2.5, "Ray Data actors": 1.5, "other Ray workers": 1.25,
                      "Ray daemons": 0.5, "other": 1.0}  # fmt: skip
