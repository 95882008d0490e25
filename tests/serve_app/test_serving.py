"""The dispatcher's logic without Serve: a keyword predictor (test double) and the stub backend
(test double) stand in for the Embedder -> Scorer chain and the LLMs."""

from __future__ import annotations

import asyncio
import json

import pytest

from serve_app.config import AppArgs, BackendConfig
from serve_app.protocol import RequestError
from serve_app.serving import RouterService
from tests.serve_app.conftest import POOL, PRICE, keyword_prediction, stand_in_router, run_service

C_REF = sum(PRICE.values()) / 3


def make_service(port: int | None, tmp_path, backends=POOL, **kw) -> RouterService:
    async def predict(prompts):
        return keyword_prediction(prompts)

    cfgs = {m: BackendConfig(model=m, base_url=f"http://127.0.0.1:{port}/v1") for m in backends} if port else {}
    args = AppArgs(artifact_path=str(tmp_path), auth="off", **kw)  # no caller keys here (tests/serve_app/auth/)
    return RouterService(stand_in_router(POOL, C_REF), cfgs, args, predict)


run = run_service


def chat_body(text="a chat about coffee", **kw) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": text}], **kw}).encode()


def test_route_picks_by_reward_and_lambda(tmp_path):
    svc = make_service(None, tmp_path)
    body = json.dumps({"prompt": ["chat please", "code please", "prove this"], "lambda": 0.0}).encode()
    out = run(svc, svc.route(body))
    # λ = 0: quality only, the large model everywhere.
    assert [d.model for d in out.decisions] == ["large"] * 3
    out = run(svc, svc.route(json.dumps({"prompt": ["chat please", "code please"], "lambda": 0.1}).encode()))
    assert [d.model for d in out.decisions] == ["small", "medium"]
    d = out.decisions[1]
    assert set(d.scores) == set(POOL)
    assert d.scores["medium"].reward == pytest.approx(0.85 - 0.1 * PRICE["medium"] / C_REF)
    assert out.model_dump(by_alias=True)["lambda"] == 0.1


def test_route_override_keeps_scores_and_best_model(tmp_path):
    svc = make_service(None, tmp_path)
    out = run(svc, svc.route(json.dumps({"prompt": "chat", "lambda": 1, "model": "large"}).encode()))
    d = out.decisions[0]
    assert (d.model, d.best_model, d.overridden) == ("large", "small", True)


def test_chat_forwards_to_the_chosen_backend(stub_backend, tmp_path):
    svc = make_service(stub_backend.port, tmp_path)
    resp = run(svc, svc.chat(chat_body(), {"x-router-lambda": "1"}))
    body = json.loads(resp.body)
    assert resp.status_code == 200
    assert body["model"] == "small" and resp.headers["x-router-model"] == "small"
    assert "x-router-fallbacks" not in resp.headers
    assert stub_backend.stats == {"small": 1}


def test_chat_streams_sse_through(stub_backend, tmp_path):
    svc = make_service(stub_backend.port, tmp_path)

    async def go():
        resp = await svc.chat(chat_body("code review", model="router-0.1", stream=True), {})
        chunks = [c async for c in resp.body_iterator]
        return resp, b"".join(chunks).decode()

    resp, raw = run(svc, go())
    assert resp.headers["x-router-model"] == "medium"
    events = [e[len("data: "):] for e in raw.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    assert {p["model"] for p in parsed} == {"medium"}
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in parsed) == stub_backend.behaviour.text


@pytest.mark.parametrize("stream", [False, True])
def test_chat_falls_back_on_failure_and_timeout(stub_backend, tmp_path, stream):
    stub_backend.behaviour.fail = {"small": 503}
    stub_backend.behaviour.delay_ms = {"medium": 3000}
    svc = make_service(stub_backend.port, tmp_path, backend_timeout_s=0.5)
    # λ=0.1: small first, then medium (times out), then large.
    resp = run(svc, svc.chat(chat_body(stream=stream), {"x-router-lambda": "0.1"}))
    assert resp.status_code == 200
    assert resp.headers["x-router-model"] == "large"
    assert resp.headers["x-router-best-model"] == "small"
    assert resp.headers["x-router-fallbacks"] == "small=http-503,medium=timeout"


def test_chat_pool_exhausted_is_a_502(stub_backend, tmp_path):
    stub_backend.behaviour.fail = {m: 500 for m in POOL}
    svc = make_service(stub_backend.port, tmp_path)
    with pytest.raises(RequestError) as err:
        run(svc, svc.chat(chat_body(), {}))
    assert err.value.status == 502
    assert "small (http-500)" in err.value.message and "large (http-500)" in err.value.message


def test_chat_unreachable_backend_is_a_fallback(stub_backend, tmp_path):
    svc = make_service(stub_backend.port, tmp_path, backends=("medium", "large"))
    svc.backends["medium"] = BackendConfig(model="medium", base_url="http://127.0.0.1:9/v1")  # nothing listens on port 9
    resp = run(svc, svc.chat(chat_body("code"), {"x-router-lambda": "0.1"}))
    assert resp.headers["x-router-model"] == "large"
    assert resp.headers["x-router-fallbacks"].startswith("medium=connect")


def test_chat_override_and_missing_backends(stub_backend, tmp_path):
    svc = make_service(stub_backend.port, tmp_path, backends=("small", "large"))
    resp = run(svc, svc.chat(chat_body(model="large"), {}))
    assert resp.headers["x-router-model"] == "large"
    svc = make_service(stub_backend.port, tmp_path, backends=("small", "large"))
    with pytest.raises(RequestError, match="no backend configured"):
        run(svc, svc.chat(chat_body(model="medium"), {}))
    svc = make_service(None, tmp_path)
    with pytest.raises(RequestError) as err:
        run(svc, svc.chat(chat_body(), {}))
    assert err.value.status == 503


def test_models_lists_router_and_pool(stub_backend, tmp_path):
    svc = make_service(stub_backend.port, tmp_path, backends=("small",))
    cards = {c.id: c for c in svc.models().data}
    assert set(cards) == {"router", *POOL}
    assert cards["router"].routable and cards["small"].has_backend and not cards["large"].has_backend
    run(svc, asyncio.sleep(0))


def test_sse_rewrite_sets_the_model_and_passes_other_lines():
    from serve_app.backends import rewrite_sse_event

    out = rewrite_sse_event(b'data: {"model": "vendor/x", "choices": []}\n', "x")
    assert json.loads(out[len(b"data: "):]) == {"model": "x", "choices": []} and out.endswith(b"\n")
    for line in (b"data: [DONE]\n", b"\n", b": keep-alive\n", b"data: {not json}\n", b"event: ping\n"):
        assert rewrite_sse_event(line, "x") == line


def test_a_stream_cut_mid_way_ends_with_an_error_event(stub_backend, tmp_path):
    stub_backend.behaviour.cut_stream = {"small": 3}
    svc = make_service(stub_backend.port, tmp_path)

    async def go():
        resp = await svc.chat(chat_body(stream=True), {"x-router-lambda": "1"})
        return resp, b"".join([c async for c in resp.body_iterator]).decode()

    resp, raw = run(svc, go())
    assert resp.status_code == 200 and resp.headers["x-router-model"] == "small"
    events = [e[len("data: "):] for e in raw.split("\n\n") if e.startswith("data: ")]
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["type"] == "upstream_error" and "failed mid-stream" in last["error"]["message"]


def test_route_reports_each_models_uncertainty_when_the_prediction_has_one(tmp_path):
    import numpy as np

    from router.prediction import Prediction

    async def predict(prompts):
        p = keyword_prediction(prompts)
        return Prediction(p.quality, p.cost, uncertainty=np.tile([0.01, 0.02, 0.03], (len(prompts), 1)))

    svc = RouterService(stand_in_router(POOL, C_REF), {}, AppArgs(artifact_path=str(tmp_path), auth="off"), predict)
    out = run(svc, svc.route(json.dumps({"prompt": "chat", "lambda": 0.1}).encode()))
    scores = out.decisions[0].scores
    assert [scores[m].uncertainty for m in POOL] == [0.01, 0.02, 0.03]
    # a single network has no estimate: null, not a made-up number
    svc = make_service(None, tmp_path)
    out = run(svc, svc.route(json.dumps({"prompt": "chat"}).encode()))
    assert all(s.uncertainty is None for s in out.decisions[0].scores.values())
    assert out.model_dump(by_alias=True)["decisions"][0]["scores"]["small"]["uncertainty"] is None
