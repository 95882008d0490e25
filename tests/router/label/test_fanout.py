"""Calls to backends (the stand-in stub backend, a TEST DOUBLE): back-off on 429, a backend that is
down, answers without usage, and the concurrency and requests-per-minute limits."""

from __future__ import annotations

import asyncio
import time

from router.backends import BackendConfig
from router.label.budget import Budget
from router.label.config import BackendLimits
from router.label.fanout import Fanout

MSG = [{"role": "user", "content": "What is the capital of France?"}]


def _fanout(backends, limits=None, **kw):
    limits = limits or {m: BackendLimits(concurrency=4) for m in backends}
    return Fanout(backends, limits, kw.pop("budget", Budget(None)), backoff_s=kw.pop("backoff_s", 0.01), **kw)


def _run(fan, coro_fn):
    async def go():
        try:
            return await coro_fn()
        finally:
            await fan.close()

    return asyncio.run(go())


def _backend(port, model="m", **kw):
    return BackendConfig(model=model, base_url=f"http://127.0.0.1:{port}/v1", input_price_per_mtok=1.0, output_price_per_mtok=2.0, **kw)


def test_429_is_retried_with_backoff_honouring_retry_after(stub):
    stub.behaviour.throttle = {"m": 2}
    stub.behaviour.retry_after_s = 0.2
    fan = _fanout({"m": _backend(stub.port)})
    t0 = time.perf_counter()
    out = _run(fan, lambda: fan.call("m", MSG, 16))
    assert out.ok and out.attempts == 3
    assert time.perf_counter() - t0 >= 0.4  # two waits of at least Retry-After
    stats = fan.stats_report()["m"]
    assert stats["retries"] == 2 and stats["attempt_errors"] == {"http-429": 2} and stats["failed"] == {}
    assert out.cost == _backend(stub.port).observed_cost(out.prompt_tokens, out.completion_tokens) > 0


def test_rate_limited_past_the_attempts_is_a_failed_call(stub):
    stub.behaviour.throttle = {"m": 10}
    stub.behaviour.retry_after_s = 0.0
    fan = _fanout({"m": _backend(stub.port)}, max_attempts=3)
    out = _run(fan, lambda: fan.call("m", MSG, 16))
    assert out.status == "failed" and out.reason == "http-429" and out.attempts == 3 and out.cost == 0
    stub.behaviour.throttle = {}


def test_a_backend_that_is_down_fails_its_calls_then_is_skipped(stub, down_port):
    fan = _fanout({"up": _backend(stub.port, "up"), "down": _backend(down_port, "down")}, max_attempts=2,
                  max_consecutive_failures=3)  # fmt: skip

    async def many():
        up = await asyncio.gather(*(fan.call("up", MSG, 16) for _ in range(6)))
        down = [await fan.call("down", MSG, 16) for _ in range(6)]
        return up, down

    up, down = _run(fan, many)
    assert all(o.ok for o in up)
    assert all(o.status == "failed" for o in down)  # recorded as failed, not dropped
    assert [o.reason for o in down] == ["connect"] * 3 + ["backend-down"] * 3
    assert fan.down == {"down"}
    # After 3 failures in a row the rest are not even sent: 3 calls x 2 attempts.
    assert fan.stats_report()["down"]["attempts"] == 6


def test_answer_without_usage_gets_an_estimated_cost(stub):
    stub.behaviour.no_usage = {"m"}
    fan = _fanout({"m": _backend(stub.port)})
    out = _run(fan, lambda: fan.call("m", MSG, 16))
    stub.behaviour.no_usage = set()
    assert out.ok and out.cost_source == "estimate" and out.cost > 0 and out.prompt_tokens is None


def test_concurrency_and_rpm_limits_are_respected(stub):
    stub.behaviour.delay_ms = {"c": 100}
    fan = _fanout({"c": _backend(stub.port, "c"), "r": _backend(stub.port, "r")},
                  {"c": BackendLimits(concurrency=3), "r": BackendLimits(concurrency=10, rpm=600)})  # fmt: skip

    async def many():
        return await asyncio.gather(*(fan.call(m, [{"role": "user", "content": f"q{i}"}], 8) for m in ("c", "r") for i in range(9)))

    outs = _run(fan, many)
    stub.behaviour.delay_ms = {}
    assert all(o.ok for o in outs)
    assert stub.max_in_flight["c"] == 3 and fan.limiters["c"].max_in_flight == 3
    # 600 per minute: start k comes at least k x 100 ms after the first (a late wake-up on a busy
    # machine can shorten one gap, never the count of starts in a window).
    starts = fan.limiters["r"].starts
    assert len(starts) == 9 and all(t - starts[0] >= k * 0.1 - 1e-3 for k, t in enumerate(starts))


def test_budget_refuses_a_call_that_could_exceed_it(stub):
    budget = Budget(limit_usd=1e-6)
    fan = _fanout({"m": _backend(stub.port)}, budget=budget)
    before = stub.stats.get("m", 0)
    out = _run(fan, lambda: fan.call("m", MSG, 1000))
    assert out.status == "skipped" and budget.exhausted and budget.spent == 0
    assert stub.stats.get("m", 0) == before  # nothing was sent
