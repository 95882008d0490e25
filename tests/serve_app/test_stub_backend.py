"""The stub backend (a test double): fixed answers, SSE streaming, failures and delays per model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from serve_app.testing.stub_backend import DEFAULT_TEXT, Behaviour, StubBackend, _parse_fail


def _post(url: str, body: dict, timeout: float = 10.0):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=timeout)


@pytest.fixture
def stub():
    s = StubBackend(Behaviour(fail={"broken": 503}, delay_ms={"slow": 300}))
    s.start_in_thread()
    yield s
    s.stop_thread()


def test_answers_with_the_fixed_text(stub):
    with _post(f"http://127.0.0.1:{stub.port}/v1/chat/completions", {"model": "m1", "messages": [{"role": "user", "content": "hi there"}]}) as r:
        body = json.loads(r.read())
    assert body["model"] == "m1"
    assert body["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert body["usage"]["prompt_tokens"] == 2
    assert stub.stats == {"m1": 1}


def test_streams_sse_chunks_that_rebuild_the_text(stub):
    with _post(f"http://127.0.0.1:{stub.port}/v1/chat/completions", {"model": "m1", "stream": True, "messages": []}) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = [line[len("data: "):] for line in raw.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == DEFAULT_TEXT
    assert len(events) > 5


def test_fails_and_delays_per_model(stub):
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(f"http://127.0.0.1:{stub.port}/v1/chat/completions", {"model": "broken", "messages": []})
    assert err.value.code == 503
    t0 = time.perf_counter()
    _post(f"http://127.0.0.1:{stub.port}/v1/chat/completions", {"model": "slow", "messages": []}).read()
    assert time.perf_counter() - t0 >= 0.3
    # Behaviour can be changed at run time.
    _post(f"http://127.0.0.1:{stub.port}/stub/behaviour", {"fail": {}}).read()
    _post(f"http://127.0.0.1:{stub.port}/v1/chat/completions", {"model": "broken", "messages": []}).read()


def test_fail_flag_parsing():
    assert _parse_fail(["a", "b:503", "c:d"]) == {"a": 500, "b": 503, "c:d": 500}


def test_cli_starts_and_serves(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "serve_app.testing.stub_backend", "--port", str(port), "--fail", "x:502"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert json.loads(r.read())["status"] == "ok"
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("stub backend CLI did not start")
        with pytest.raises(urllib.error.HTTPError) as err:
            _post(f"http://127.0.0.1:{port}/v1/chat/completions", {"model": "x", "messages": []})
        assert err.value.code == 502
    finally:
        proc.terminate()
        proc.wait(10)


def test_skilled_models_answer_deterministically_and_the_judge_scores_them():
    """The stand-in's pool mode (for router label): per-task skill, answer key, judge, throttling, call counts."""
    from serve_app.testing.stub_backend import WRONG_TEXT, prompt_key

    prompts = [f"question number {i}" for i in range(40)]
    key = {prompt_key(p): ("math", f"ref-{i}") for i, p in enumerate(prompts)}
    s = StubBackend(Behaviour(skills={"good": {"math": 0.9}, "bad": {"math": 0.1}}, answer_key=key, throttle={"bad": 1}))
    s.start_in_thread()
    try:
        url = f"http://127.0.0.1:{s.port}/v1/chat/completions"
        with pytest.raises(urllib.error.HTTPError) as err:
            _post(url, {"model": "bad", "messages": [{"role": "user", "content": prompts[0]}]})
        assert err.value.code == 429 and err.value.headers["Retry-After"]

        def ask(model, p):
            with _post(url, {"model": model, "messages": [{"role": "user", "content": p}]}) as r:
                return json.loads(r.read())["choices"][0]["message"]["content"]

        right = {m: sum(ask(m, p) == f"ref-{i}" for i, p in enumerate(prompts)) for m in ("good", "bad")}
        assert right["good"] >= 30 and right["bad"] <= 10
        assert ask("good", prompts[3]) == ask("good", prompts[3])  # deterministic
        assert ask("bad", prompts[5]) in ("ref-5", WRONG_TEXT)
        rubric = f"<prompt>{prompts[1]}</prompt>\n<response>The answer: ref-1</response>"
        assert ask("stub-judge", rubric) == "1"
        assert ask("stub-judge", f"<prompt>{prompts[1]}</prompt>\n<response>{WRONG_TEXT}</response>") == "0"
        assert s.calls[("good", prompt_key(prompts[3]))] == 3 and s.answered[("bad", prompt_key(prompts[0]))] == 1
    finally:
        s.stop_thread()
