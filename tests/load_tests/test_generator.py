"""The load generator against a tiny local aiohttp server (no Ray): modes, bounds, errors, output."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import ValidationError

from load_tests.generator import (
    LoadConfig,
    RemoteTargetError,
    check_target,
    latency_summary,
    main,
    plot_sweep,
    run_load,
    run_sweep,
)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000", "http://127.3.2.1:9", "http://localhost:8000/x", "http://[::1]:8000", "https://LOCALHOST"],
)
def test_loopback_targets_are_allowed(url):
    assert check_target(url) == url


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.com", "http://0.0.0.0:8000", "http://[::]:80", "http://128.0.0.1"])
def test_remote_targets_are_refused_by_default(url):
    with pytest.raises(RemoteTargetError, match="loopback"):
        check_target(url)
    with pytest.raises(ValidationError, match="loopback"):
        LoadConfig(url=url)
    assert check_target(url, allow_remote=True) == url


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:8000", "http://"])
def test_malformed_targets_are_refused(url):
    with pytest.raises(ValueError):
        check_target(url, allow_remote=True)


def test_config_validation():
    with pytest.raises(ValidationError, match="rate"):
        LoadConfig(mode="open")
    with pytest.raises(ValidationError, match="route endpoint"):
        LoadConfig(endpoint="chat", prompts_per_request=4)
    with pytest.raises(ValidationError):
        LoadConfig(concurrency=0)
    assert LoadConfig(url="http://127.0.0.1:1/").target == "http://127.0.0.1:1/v1/route"


def test_latency_summary():
    s = latency_summary([0.001 * i for i in range(1, 101)])
    assert s["p50"] == pytest.approx(50.5)
    assert s["p99"] == pytest.approx(99.01)
    assert s["max"] == pytest.approx(100.0)
    assert s["n"] == 100
    assert latency_summary([])["p50"] is None


def test_closed_loop_keeps_concurrency_and_request_bound(stub_server, few_prompts):
    stub_server.state.delay_s = 0.02
    config = LoadConfig(url=stub_server.url, concurrency=4, max_requests=40, duration_s=30, keep_records=True)
    result = run_load(config, few_prompts)
    assert result.sent == 40 and result.ok == 40 and result.errors == {}
    assert stub_server.state.max_in_flight == 4
    # 40 requests of 20 ms, 4 at a time: about 0.2 s, far from the 30 s bound
    assert result.elapsed_s < 5
    assert result.throughput_rps == pytest.approx(40 / result.elapsed_s)
    assert result.latency_ms["p50"] >= 20
    assert result.models == {"small": 40}
    assert len(result.records) == 40
    # real prompt text with a unique suffix, and λ in the body
    bodies = stub_server.state.bodies
    assert all(b["lambda"] == 0.5 for b in bodies)
    assert len({b["prompt"] for b in bodies}) == 40
    assert bodies[0]["prompt"].startswith(few_prompts[0])


def test_closed_loop_respects_duration(stub_server, few_prompts):
    stub_server.state.delay_s = 0.05
    t = time.perf_counter()
    result = run_load(LoadConfig(url=stub_server.url, concurrency=2, max_requests=10_000, duration_s=0.5), few_prompts)
    wall = time.perf_counter() - t
    assert wall < 2.0
    assert 4 <= result.sent < 60
    assert result.ok == result.sent


def test_open_loop_offers_the_rate(stub_server, few_prompts):
    config = LoadConfig(url=stub_server.url, mode="open", rate=100, max_requests=10_000, duration_s=1.0, seed=1)
    result = run_load(config, few_prompts)
    # Poisson with mean 100 over 1 s: 100 ± 10; allow a generous band
    assert 60 <= result.sent <= 140
    assert result.ok == result.sent
    assert result.offered_rps == 100


def test_open_loop_does_not_wait_for_answers(stub_server, few_prompts):
    # Each answer takes 0.3 s, arrivals come every ~20 ms: a closed loop of 1 would send ~3.
    stub_server.state.delay_s = 0.3
    result = run_load(LoadConfig(url=stub_server.url, mode="open", rate=50, max_requests=30, duration_s=5), few_prompts)
    assert result.sent == 30 and result.ok == 30
    assert stub_server.state.max_in_flight >= 5


def test_open_loop_overflow_is_bounded(stub_server, few_prompts):
    stub_server.state.delay_s = 0.5
    config = LoadConfig(url=stub_server.url, mode="open", rate=200, max_requests=60, duration_s=5, max_in_flight=5)
    result = run_load(config, few_prompts)
    assert stub_server.state.max_in_flight <= 5
    assert result.errors.get("client_overflow", 0) > 0
    assert result.ok + result.errors["client_overflow"] == result.sent


def test_errors_are_counted_by_status(stub_server, few_prompts):
    stub_server.state.statuses = [503, 503, 500, 429]
    result = run_load(LoadConfig(url=stub_server.url, max_requests=10), few_prompts)
    assert result.errors == {"503": 2, "500": 1, "429": 1}
    assert result.ok == 6
    assert result.latency_ms["n"] == 6 and result.latency_all_ms["n"] == 10


def test_timeouts_hold(stub_server, few_prompts):
    stub_server.state.hang_s = 5.0
    t = time.perf_counter()
    result = run_load(LoadConfig(url=stub_server.url, concurrency=3, max_requests=3, timeout_s=0.3), few_prompts)
    assert time.perf_counter() - t < 2.0
    assert result.errors == {"timeout": 3} and result.ok == 0
    assert result.latency_ms["p50"] is None


def test_connection_refused_is_an_error_not_a_crash(few_prompts):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_load(LoadConfig(url=f"http://127.0.0.1:{port}", max_requests=3, timeout_s=2), few_prompts)
    assert result.errors == {"connection": 3}


def test_chat_and_batched_route_bodies(stub_server, few_prompts):
    run_load(LoadConfig(url=stub_server.url, endpoint="chat", max_requests=2, lam=1.0, stream=True), few_prompts)
    run_load(LoadConfig(url=stub_server.url, endpoint="route", max_requests=2, prompts_per_request=8, reward="linear"), few_prompts)
    chat, _, batch, _ = stub_server.state.bodies
    assert chat["model"] == "router" and chat["stream"] is True
    assert set(chat) == {"model", "messages", "stream"}  # a plain OpenAI body
    assert float(stub_server.state.headers[0]["x-router-lambda"]) == 1.0
    assert chat["messages"][0]["role"] == "user"
    assert len(batch["prompt"]) == 8 and batch["reward"] == "linear" and batch["lambda"] == 0.5
    assert "x-router-lambda" not in stub_server.state.headers[2]


def test_sweep_and_plot(stub_server, few_prompts, tmp_path):
    base = LoadConfig(url=stub_server.url, max_requests=20, duration_s=0.5)
    results = run_sweep(base, [20, 60], few_prompts)
    assert [r.offered_rps for r in results] == [20, 60]
    assert results[1].sent > results[0].sent
    png = plot_sweep(results, tmp_path / "sweep.png")
    assert png.stat().st_size > 1000


def test_cli_writes_json(stub_server, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["--url", stub_server.url, "--requests", "5", "--concurrency", "2", "--dataset", "routellm", "--out", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["ok"] == 5 and data["config"]["concurrency"] == 2
    assert "p99" in data["latency_ms"]
    # the bundled routellm prompts were sent
    assert all(len(b["prompt"]) > 5 for b in stub_server.state.bodies)


def test_cli_sweep_writes_plot(stub_server, tmp_path):
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    code = main(["--url", stub_server.url, "--sweep", "10,30", "--requests", "10", "--duration", "0.4", "--out", str(out), "--plot", str(png)])
    assert code == 0
    assert len(json.loads(out.read_text())["results"]) == 2
    assert png.exists()


def test_cli_refuses_remote_target(capsys):
    assert main(["--url", "http://192.0.2.1:8000", "--requests", "1"]) == 2
    assert "loopback" in capsys.readouterr().err
    assert main(["--mode", "open", "--requests", "1"]) == 2
    assert "rate" in capsys.readouterr().err
