"""The service under a real Serve (one per module, on the session's 2-CPU Ray, on a free loopback
port): a tiny cross-attention artifact trained here on the synthetic table with the hashing encoder,
and the stub backend (a test double) as every pool model's LLM."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
import yaml

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "router-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, path: str, body=None, headers=None, raw: bytes | None = None, timeout: float = 60.0):
    """(status, headers, body bytes) of one HTTP request; no exception for 4xx/5xx."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def call_json(base, path, body=None, headers=None, raw=None):
    status, h, data = call(base, path, body, headers, raw)
    return status, h, json.loads(data)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from router.data.synthetic import make_synthetic_table
    from router.embeddings.hashing import HashingEncoder
    from router.model.artifact import save_artifact
    from router.model.config import TrainConfig
    from router.data.splits import domains
    from router.model.ensemble import EnsemblePredictor

    # The uncertainty-aware router (2 members, shrinkage chosen on a random and a domain fold), so
    # the served path carries each model's uncertainty end to end.
    table = make_synthetic_table(n=150, seed=0)
    enc = HashingEncoder(64)
    pred = EnsemblePredictor(TrainConfig(max_epochs=6, hidden_dim=16, batch_size=64, seed=0), {"members": 2, "domain_folds": 1})
    pred.fit(enc.encode(table.prompts), table.quality, table.cost, table.models, domains=domains(table.eval_names))
    return save_artifact(pred, tmp_path_factory.mktemp("artifact"), enc.name, enc.dim)


@pytest.fixture(scope="module")
def args(artifact, stub, tmp_path_factory):
    backends = {"backends": [{"model": m, "base_url": f"http://127.0.0.1:{stub.port}/v1", "api_key_env": "STUB_KEY"}
                             for m in ("small", "medium", "large")]}
    path = tmp_path_factory.mktemp("cfg") / "backends.yaml"
    path.write_text(yaml.safe_dump(backends))
    return {
        "artifact_path": str(artifact),
        "backends_file": str(path),
        "embedder_threads": 1,
        "embedder_batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.01},
        "max_prompt_chars": 2000,
        "backend_timeout_s": 2.0,
        "auth": "off",
    }


@pytest.fixture(scope="module")
def base(ray_session, args):
    from ray import serve

    from serve_app.app import build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name=APP, route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.delete(APP)
    serve.shutdown()


@pytest.fixture
def reset_stub(stub):
    yield stub
    stub.behaviour.fail, stub.behaviour.delay_ms = {}, {}


def local_decisions(artifact, prompts, lam, reward="linear"):
    """What the service must answer: the same artifact's ``Router.route`` in this process."""
    from router.core import Router

    return Router.load(artifact).route(list(prompts), lam=lam, reward=reward)


PROMPTS = ["math question: integral prove theorem", "code question: python bug compile", "chat question: coffee holiday"]


def test_health_and_models(base):
    status, _, body = call_json(base, "/healthz")
    assert status == 200 and body["status"] == "ok"
    assert body["pool"] == ["small", "medium", "large"]
    assert body["embedder"]["encoder"] == "hash:64" and body["embedder"]["device"] == "cpu"
    assert body["embedder"]["batching"] == {"max_batch_size": 8, "batch_wait_timeout_s": 0.01, "max_concurrent_batches": 1,
                                            "max_batch_tokens": 2048}
    # One torch thread: the replica holds half a CPU (the default); never more threads than CPUs.
    assert body["embedder"]["torch_threads"] == 1 and body["embedder"]["cpus"] == 0.5
    assert body["scorer"]["torch_threads"] == 1
    status, _, body = call_json(base, "/v1/models")
    assert status == 200 and [m["id"] for m in body["data"]] == ["router", "small", "medium", "large"]


@pytest.mark.parametrize("lam", [0.0, 0.3, 5.0])
def test_route_matches_the_artifact(base, artifact, lam):
    status, _, body = call_json(base, "/v1/route", {"prompt": PROMPTS, "lambda": lam})
    assert status == 200 and body["lambda"] == lam and body["reward_type"] == "linear"
    expected = local_decisions(artifact, PROMPTS, lam)
    assert [d["model"] for d in body["decisions"]] == [d.model for d in expected]
    for got, want in zip(body["decisions"], expected):
        for m in want.quality:
            assert got["scores"][m]["quality"] == pytest.approx(want.quality[m], rel=1e-5)
            assert got["scores"][m]["cost"] == pytest.approx(want.cost[m], rel=1e-5)
            assert got["scores"][m]["reward"] == pytest.approx(want.reward[m], rel=1e-5, abs=1e-9)
            assert got["scores"][m]["uncertainty"] == pytest.approx(want.uncertainty[m], rel=1e-5, abs=1e-9)


def test_route_single_prompt_reward_and_override(base, artifact):
    status, _, body = call_json(base, "/v1/route", {"prompt": PROMPTS[0], "lambda": 100, "reward": "routerbench", "model": "large"})
    assert status == 200 and len(body["decisions"]) == 1
    d = body["decisions"][0]
    assert d["model"] == "large" and d["overridden"] is True
    assert d["best_model"] == local_decisions(artifact, PROMPTS[:1], 100, "routerbench")[0].model


def test_lambda_moves_the_choice_to_cheaper_models(base):
    _, _, free = call_json(base, "/v1/route", {"prompt": PROMPTS, "lambda": 0})
    _, _, dear = call_json(base, "/v1/route", {"prompt": PROMPTS, "lambda": 1000})
    cost = lambda body: sum(d["scores"][d["model"]]["cost"] for d in body["decisions"])  # noqa: E731
    assert cost(dear) < cost(free)
    assert {d["model"] for d in dear["decisions"]} == {"small"}


def test_chat_completion(base, artifact, stub):
    before = dict(stub.stats)
    status, h, body = call_json(base, "/v1/chat/completions",
                                {"model": "router-0.3", "messages": [{"role": "user", "content": PROMPTS[1]}]})
    assert status == 200, body
    expected = local_decisions(artifact, PROMPTS[1:2], 0.3)[0].model
    assert body["model"] == h["x-router-model"] == expected
    assert h["x-router-lambda"] == "0.3" and "x-router-fallbacks" not in h
    assert body["choices"][0]["message"]["content"] == stub.behaviour.text
    assert stub.stats[expected] == before.get(expected, 0) + 1


def test_chat_completion_streams(base):
    status, h, raw = call(base, "/v1/chat/completions",
                          {"messages": [{"role": "user", "content": PROMPTS[2]}], "stream": True}, {"x-router-lambda": "2"})
    assert status == 200 and h["Content-Type"].startswith("text/event-stream")
    events = [e[len("data: "):] for e in raw.decode().split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]" and len(events) > 3
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["model"] for c in chunks} == {h["x-router-model"]}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_falls_back_when_the_best_backend_fails(base, reset_stub, stream):
    msg = {"messages": [{"role": "user", "content": PROMPTS[0]}], "stream": stream}
    _, _, routed = call_json(base, "/v1/route", {"prompt": PROMPTS[0], "lambda": 0.3})
    scores = routed["decisions"][0]["scores"]
    order = sorted(scores, key=lambda m: (-scores[m]["reward"], scores[m]["cost"]))
    reset_stub.behaviour.fail = {order[0]: 503}
    status, h, _ = call(base, "/v1/chat/completions", msg, {"x-router-lambda": "0.3"})
    assert status == 200
    assert h["x-router-model"] == order[1] and h["x-router-best-model"] == order[0]
    assert h["x-router-fallbacks"] == f"{order[0]}=http-503"


def test_chat_pool_exhausted_is_a_clear_502(base, reset_stub):
    reset_stub.behaviour.fail = {m: 500 for m in ("small", "medium", "large")}
    status, _, body = call_json(base, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 502
    assert body["error"]["message"].startswith("every backend tried failed")


@pytest.mark.parametrize(
    "path, body, raw, headers, status, words",
    [
        ("/v1/route", None, b"{oops", {}, 400, "malformed JSON"),
        ("/v1/route", {"lambda": 1}, None, {}, 400, "missing required field 'prompt'"),
        ("/v1/route", {"prompt": ""}, None, {}, 400, "prompt is empty"),
        ("/v1/route", {"prompt": []}, None, {}, 400, "empty list"),
        ("/v1/route", None, b'{"prompt": "x", "lambda": NaN}', {}, 400, "finite number >= 0"),
        ("/v1/route", {"prompt": "x", "lambda": -0.5}, None, {}, 400, "finite number >= 0"),
        ("/v1/route", {"prompt": "x", "reward": "quadratic"}, None, {}, 400, "unknown reward"),
        ("/v1/route", {"prompt": "x" * 2001}, None, {}, 400, "the limit is 2000"),
        ("/v1/route", {"prompt": "x", "model": "gpt-9"}, None, {}, 400, "unknown model 'gpt-9'"),
        ("/v1/chat/completions", None, b"not json", {}, 400, "malformed JSON"),
        ("/v1/chat/completions", {"messages": []}, None, {}, 400, "non-empty list"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, None, {"x-router-lambda": "inf"}, 400, "finite"),
        ("/v1/chat/completions", {"model": "router--1", "messages": [{"role": "user", "content": "x"}]}, None, {}, 400, "finite"),
        ("/v1/chat/completions", {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}, None, {}, 400, "unknown model"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "router_reward": "?"}, None, {}, 400, "unknown reward"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "y" * 2001}]}, None, {}, 400, "the limit is 2000"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_message(base, path, body, raw, headers, status, words):
    got, _, data = call_json(base, path, body, headers, raw)
    assert got == status
    assert words in data["error"]["message"]


def test_batching_is_retuned_live_through_user_config(base, args):
    from ray import serve

    from serve_app.app import build_app

    new = dict(args, embedder_batching={"max_batch_size": 4, "batch_wait_timeout_s": 0.05})
    serve.run(build_app(new), name=APP, route_prefix="/")
    _, _, body = call_json(base, "/healthz")
    assert body["embedder"]["batching"] == {"max_batch_size": 4, "batch_wait_timeout_s": 0.05, "max_concurrent_batches": 1,
                                            "max_batch_tokens": 2048}
    status, _, _ = call_json(base, "/v1/route", {"prompt": PROMPTS})
    assert status == 200


def test_concurrent_requests_are_batched_and_answered_in_order(base, artifact):
    from concurrent.futures import ThreadPoolExecutor

    prompts = [f"{w} question {i}: {w}" for i, w in enumerate(["math", "code", "chat"] * 6)]
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda p: call_json(base, "/v1/route", {"prompt": p, "lambda": 0.3})[2], prompts))
    expected = local_decisions(artifact, prompts, 0.3)
    assert [b["decisions"][0]["model"] for b in bodies] == [d.model for d in expected]
    q = np.array([b["decisions"][0]["scores"]["large"]["quality"] for b in bodies])
    assert np.allclose(q, [d.quality["large"] for d in expected], rtol=1e-5)
