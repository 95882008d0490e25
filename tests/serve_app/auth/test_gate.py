"""Caller keys on the request path, without Serve: RouterService with auth required, a keyword
predictor and the stub backend (both test doubles; the stub reports `usage`), a SQLite ledger."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from serve_app.protocol import RequestError
from tests.serve_app.auth.conftest import add_key
from tests.serve_app.conftest import run_service


def chat_body(text="a chat about coffee", **kw) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": text}], **kw}).encode()


def auth(secret: str) -> dict:
    return {"authorization": f"Bearer {secret}"}


run = run_service


async def status_of(coro) -> tuple[int, object]:
    try:
        resp = await coro
    except RequestError as exc:
        return exc.status, exc
    return getattr(resp, "status_code", 200), resp


def test_missing_invalid_and_revoked_keys_are_401s_in_openai_shape(stub_backend, make_service, keys_path, recorder):
    good = add_key(keys_path, "good")
    gone = add_key(keys_path, "gone", revoked=True)
    svc = make_service(stub_backend.port)

    async def go():
        out = {}
        for name, headers in {"missing": {}, "not bearer": {"authorization": f"Basic {good}"}, "unknown": auth("rk-who-" + "a" * 64),
                              "garbage": auth("x\u00ff" * 300), "revoked": auth(gone)}.items():  # fmt: skip
            for call in (svc.chat(chat_body(), headers), svc.route(b'{"prompt": "hi"}', headers)):
                out.setdefault(name, []).append(await status_of(call))
        out["ok"] = [await status_of(svc.chat(chat_body(), auth(good)))]
        return out

    out = run(svc, go())
    for name in ("missing", "not bearer", "unknown", "garbage", "revoked"):
        for status, err in out[name]:
            assert status == 401, name
            body = err.to_body()["error"]
            assert body["type"] == "invalid_api_key" and body["code"] == 401 and body["message"]
            assert err.headers["WWW-Authenticate"].startswith("Bearer")
            assert good not in body["message"] and gone not in body["message"]
    assert "revoked" in out["revoked"][0][1].message and "'gone'" in out["revoked"][0][1].message
    assert out["ok"][0][0] == 200
    refusals = recorder.by_tags("router_key_refusals")
    assert refusals[(("key", "-"), ("reason", "missing"), ("status", "401"))] == 4  # missing + not bearer, 2 endpoints
    assert refusals[(("key", "gone"), ("reason", "revoked"), ("status", "401"))] == 2
    assert stub_backend.stats == {"small": 1}  # refused requests never reached a backend


def test_headers_spend_and_per_key_metrics(stub_backend, make_service, keys_path, recorder):
    secret = add_key(keys_path, "team-a", budget_usd_per_day=1.0, default_lambda=1.0)
    svc = make_service(stub_backend.port)

    async def go():
        a = await svc.chat(chat_body(), auth(secret))
        b = await svc.chat(chat_body("code review of a parser"), auth(secret))
        headers: dict = {}
        await svc.route(b'{"prompt": "chat"}', auth(secret), headers)
        return a, b, headers

    a, b, route_headers = run(svc, go())
    assert a.headers["x-router-key"] == "team-a" and a.headers["x-router-lambda"] == "1.0"
    # chat -> small at 20 tokens: exactly the predicted 1e-5 (see TOKEN_PRICE); code -> medium, 21 tokens.
    assert float(a.headers["x-router-spend-usd"]) == pytest.approx(1e-5, abs=1e-9)
    assert float(a.headers["x-router-budget-remaining-usd"]) == pytest.approx(1.0 - 1e-5, abs=1e-9)
    cost_b = 21 * 5.0 / 1e6  # 5 prompt words + 16 answer words at medium's price
    assert b.headers["x-router-model"] == "medium"
    assert float(b.headers["x-router-spend-usd"]) == pytest.approx(1e-5 + cost_b, abs=1e-9)
    assert route_headers == {"x-router-key": "team-a", "x-router-lambda": "1.0"}
    assert recorder.total("router_key_spend_usd", key="team-a") == pytest.approx(1e-5 + cost_b)
    assert recorder.total("router_key_tokens", key="team-a") == 41
    assert recorder.total("router_key_requests", key="team-a") == 3
    assert recorder.total("router_key_lambda", key="team-a") == 3.0  # gauge set to 1.0 three times


def test_policy_models_and_defaults(stub_backend, make_service, keys_path):
    secret = add_key(keys_path, "narrow", models=["medium", "large"], default_lambda=0.1, default_reward="exp")
    svc = make_service(stub_backend.port)

    async def go():
        chat = await svc.chat(chat_body(), auth(secret))  # small would win; the key may not use it
        route = await svc.route(b'{"prompt": "a chat"}', auth(secret))
        forbidden = await status_of(svc.chat(chat_body(model="small"), auth(secret)))
        caller_lam = await svc.chat(chat_body("code"), {**auth(secret), "x-router-lambda": "0"})
        return chat, route, forbidden, caller_lam

    chat, route, (status, err), caller_lam = run(svc, go())
    assert chat.headers["x-router-model"] == "medium" and chat.headers["x-router-best-model"] == "small"
    assert chat.headers["x-router-reward"] == "exponential" and chat.headers["x-router-lambda"] == "0.1"
    assert route.decisions[0].model == "medium" and route.decisions[0].best_model == "small"
    assert status == 403 and "may not use model 'small'" in err.message
    assert caller_lam.headers["x-router-lambda"] == "0.0"  # without a spend target the caller's λ wins


def test_requests_per_minute_is_a_429_with_retry_after(stub_backend, make_service, keys_path, recorder):
    secret = add_key(keys_path, "slow", requests_per_min=3)
    other = add_key(keys_path, "other", requests_per_min=3)
    svc = make_service(stub_backend.port)

    async def go():
        return [await status_of(svc.route(b'{"prompt": "chat"}', auth(secret))) for _ in range(5)] + [
            await status_of(svc.route(b'{"prompt": "chat"}', auth(other)))]

    out = run(svc, go())
    assert [s for s, _ in out] == [200, 200, 200, 429, 429, 200]
    err = out[3][1]
    assert 1 <= int(err.headers["Retry-After"]) <= 60 and "3 requests per minute" in err.message
    assert recorder.total("router_key_refusals", key="slow", status="429") == 2


def test_tokens_per_minute(stub_backend, make_service, keys_path):
    secret = add_key(keys_path, "wordy", tokens_per_min=30)
    svc = make_service(stub_backend.port)

    async def go():
        return [await status_of(svc.chat(chat_body(), auth(secret))) for _ in range(3)]

    out = run(svc, go())
    # 20 tokens, then 40 (>= 30: refused from then on).
    assert [s for s, _ in out] == [200, 200, 429] and "tokens per minute" in out[2][1].message


def test_cheapest_only_when_the_budget_is_spent(stub_backend, make_service, keys_path):
    secret = add_key(keys_path, "thrifty", budget_usd_per_day=0.0015, default_lambda=0.0, on_exhausted="cheapest")
    svc = make_service(stub_backend.port)

    async def go():
        return [await svc.chat(chat_body("prove a theorem"), auth(secret)) for _ in range(3)]

    first, second, third = run(svc, go())
    assert first.headers["x-router-model"] == "large" and "x-router-budget" not in first.headers  # $0.001 of $0.0015
    for resp in (second, third):  # a second large one would exceed the cap
        assert resp.status_code == 200 and resp.headers["x-router-model"] == "small"
        assert resp.headers["x-router-budget"] == "exhausted; cheapest model only"


def spent_today(svc, key_id: str) -> float:
    from serve_app.auth.budget import periods

    ps = periods(svc.gate.store.keys[key_id].policy, time.time())
    return svc.gate.ledger.spent(key_id, ps, time.time())[ps[0].name]


def test_streams_are_settled_from_their_usage_chunk(stub_backend, make_service, keys_path):
    secret = add_key(keys_path, "streamer", budget_usd_per_day=1.0)
    svc = make_service(stub_backend.port)

    async def go():
        resp = await svc.chat(chat_body(stream=True), auth(secret))
        chunks = [c async for c in resp.body_iterator]
        return resp, b"".join(chunks), spent_today(svc, "streamer")

    resp, raw, spent = run(svc, go())
    assert resp.headers["x-router-key"] == "streamer" and raw.endswith(b"data: [DONE]\n\n")
    assert spent == pytest.approx(1e-5)  # the final chunk's usage: 20 tokens at small's price


def test_a_revoked_key_is_refused_within_5_s_without_restart(stub_backend, make_service, keys_path):
    import argparse

    from router.cli.keys import run_revoke

    secret = add_key(keys_path, "leaver")
    svc = make_service(stub_backend.port, keys_poll_s=1.0)

    async def go():
        assert (await status_of(svc.route(b'{"prompt": "x"}', auth(secret))))[0] == 200
        run_revoke(argparse.Namespace(file=str(keys_path), id="leaver"))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            status, _ = await status_of(svc.route(b'{"prompt": "x"}', auth(secret)))
            if status == 401:
                return time.monotonic() - t0
            await asyncio.sleep(0.05)
        return None

    elapsed = run(svc, go())
    assert elapsed is not None and elapsed < 5.0


@pytest.mark.parametrize("price_factor", [1.0, 1.5])
def test_64_concurrent_callers_never_overshoot_the_cap_by_more_than_in_flight(stub_backend, make_service, keys_path, price_factor):
    """64 callers, 4 requests each, on one key with a $0.02 daily cap; the large model is chosen
    (λ = 0). At price_factor 1 its real cost is its prediction, which the gate reserves before the
    call: no overshoot at all. At 1.5 it really costs more than predicted, so the requests in flight
    when the cap is reached overshoot it, by at most their number x their cost."""
    cap = 0.02
    secret = add_key(keys_path, "shared", budget_usd_per_day=cap, default_lambda=0.0)
    stub_backend.behaviour.default_delay_ms = 30  # answers take a while: many requests are in flight at once
    svc = make_service(stub_backend.port)
    for b in svc.backends.values():
        b.input_price_per_mtok *= price_factor
        b.output_price_per_mtok *= price_factor
    in_flight = 0
    at_first_refusal: list[int] = []
    outcomes: list[tuple[int, object]] = []

    async def caller(i: int):
        nonlocal in_flight
        for _ in range(4):
            in_flight += 1
            status, resp = await status_of(svc.chat(chat_body("please prove the theorem"), auth(secret)))
            in_flight -= 1
            if status == 429 and not at_first_refusal:
                at_first_refusal.append(in_flight)
            outcomes.append((status, resp))

    async def go():
        await asyncio.gather(*(caller(i) for i in range(64)))
        return spent_today(svc, "shared")

    spent = run(svc, go())
    ok = [r for s, r in outcomes if s == 200]
    refused = [r for s, r in outcomes if s != 200]
    per_request = 1e-3 * price_factor
    assert len(outcomes) == 256 and ok and refused and at_first_refusal
    assert spent == pytest.approx(len(ok) * per_request)  # the ledger holds exactly what was answered
    print(f"answered {len(ok)}, spent {spent:.4f} of {cap}, in flight at the first refusal: {at_first_refusal[0]}")
    assert spent <= cap + at_first_refusal[0] * per_request
    if price_factor == 1.0:
        assert spent <= cap + 1e-12
    assert spent >= cap - 2 * per_request  # the budget was used, not refused early
    for err in refused:
        assert isinstance(err, RequestError) and err.status == 429
        assert "daily budget of $0.02" in err.message and err.type == "budget_exceeded" and int(err.headers["Retry-After"]) >= 1


def test_an_unreachable_ledger_is_a_503_that_names_no_address(stub_backend, make_service, keys_path, caplog):
    from tests.serve_app.auth.conftest import free_port

    secret = add_key(keys_path, "k", requests_per_min=10)
    url = f"redis://:hunter2-ledger-password@127.0.0.1:{free_port()}/0"  # nothing listens there
    svc = make_service(stub_backend.port, ledger_url=url)
    status, err = run(svc, status_of(svc.route(b'{"prompt": "x"}', auth(secret))))
    assert status == 503 and "ledger is unavailable" in err.message and err.headers["Retry-After"] == "1"
    assert "hunter2" not in err.message and "hunter2" not in caplog.text and str(url) not in caplog.text
    assert svc.gate.describe()["ledger"] == "redis"


def test_cheapest_mode_also_answers_route_and_overrides(stub_backend, make_service, keys_path):
    secret = add_key(keys_path, "spent", budget_usd_per_day=0.0001, default_lambda=0.0, on_exhausted="cheapest")
    svc = make_service(stub_backend.port)

    async def go():
        first = await svc.chat(chat_body(model="medium"), auth(secret))  # exactly the $0.0001 cap
        dear = await svc.chat(chat_body("prove a theorem", model="large"), auth(secret))
        route = await svc.route(b'{"prompt": "prove a theorem"}', auth(secret))
        return first, dear, route

    first, dear, route = run(svc, go())
    assert first.headers["x-router-model"] == "medium" and float(first.headers["x-router-budget-remaining-usd"]) == 0
    assert dear.headers["x-router-model"] == "small" and dear.headers["x-router-budget"].startswith("exhausted")
    assert route.decisions[0].model == "small" and route.decisions[0].best_model == "large"
