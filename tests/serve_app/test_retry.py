"""serve_app.retry as plain Python: which failures are retried, how long it waits, and that it never
waits past the request's deadline."""

from __future__ import annotations

import asyncio
import random

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError, OwnerDiedError, RayTaskError
from ray.serve.exceptions import BackPressureError

from serve_app import deadlines
from serve_app.retry import RetryPolicy, call_with_retry, is_retryable


class Flaky:
    """Fails with the given errors, one per call, then answers."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def run(coro):
    return asyncio.run(coro)


def no_sleep():
    waits = []

    async def sleep(s):
        waits.append(s)

    return waits, sleep


def test_replica_failures_are_retryable_and_others_are_not():
    died_in_task = RayTaskError("embed", "traceback", ActorDiedError()).as_instanceof_cause()
    for exc in (ActorDiedError(), ActorUnavailableError("node draining", None), OwnerDiedError("ab" * 14, None, ""),
                died_in_task, BackPressureError(num_queued_requests=9, max_queued_requests=8)):  # fmt: skip
        assert is_retryable(exc), type(exc)
    for exc in (ValueError("bad input"), RuntimeError("bug"), asyncio.CancelledError()):
        assert not is_retryable(exc)


def test_retries_until_the_replacement_answers():
    call = Flaky(ActorDiedError(), ActorUnavailableError("x", None))
    waits, sleep = no_sleep()
    seen = []
    assert run(call_with_retry(call, RetryPolicy(), deadline=deadlines.Deadline.after(10), on_retry=seen.append,
                               rng=random.Random(0), sleep=sleep)) == "answer"  # fmt: skip
    assert call.calls == 3 and len(waits) == 2 and len(seen) == 2
    assert 0 <= waits[0] <= 0.05 and 0 <= waits[1] <= 0.1  # full jitter under the exponential cap


def test_other_errors_are_raised_at_once():
    call = Flaky(ValueError("bad input"))
    waits, sleep = no_sleep()
    with pytest.raises(ValueError):
        run(call_with_retry(call, RetryPolicy(), deadline=deadlines.Deadline.after(10), sleep=sleep))
    assert call.calls == 1 and waits == []


def test_gives_up_after_max_attempts():
    call = Flaky(*[ActorDiedError() for _ in range(10)])
    waits, sleep = no_sleep()
    with pytest.raises(ActorDiedError):
        run(call_with_retry(call, RetryPolicy(max_attempts=3), deadline=deadlines.Deadline.after(10), sleep=sleep))
    assert call.calls == 3


def test_never_waits_past_the_deadline():
    """A retry whose wait would not fit in what is left of the deadline is not made."""
    call = Flaky(BackPressureError(num_queued_requests=9, max_queued_requests=8, retry_after_s=2.0))
    waits, sleep = no_sleep()
    with pytest.raises(BackPressureError):
        run(call_with_retry(call, RetryPolicy(), deadline=deadlines.Deadline.after(1.0), sleep=sleep))
    assert call.calls == 1 and waits == []
    # with time to spare it waits the queue's retry_after_s, then succeeds
    call = Flaky(BackPressureError(num_queued_requests=9, max_queued_requests=8, retry_after_s=0.2))
    assert run(call_with_retry(call, RetryPolicy(), deadline=deadlines.Deadline.after(5.0), sleep=sleep)) == "answer"
    assert waits == [pytest.approx(0.2, abs=0.05)]


def test_uses_the_current_requests_deadline():
    call = Flaky(ActorDiedError(), ActorDiedError())
    policy = RetryPolicy(initial_backoff_s=0.02, max_backoff_s=0.02)

    async def go():
        with deadlines.bound(deadlines.Deadline.after(0.001)):
            await asyncio.sleep(0.005)  # the deadline has passed: no retry fits
            return await call_with_retry(call, policy)

    with pytest.raises(ActorDiedError):
        run(go())
    assert call.calls == 1


def test_real_sleeps_stay_short():
    call = Flaky(ActorDiedError(), ActorDiedError())
    policy = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.01)
    assert run(call_with_retry(call, policy, deadline=deadlines.Deadline.after(2.0))) == "answer"


def test_timeout_header():
    from serve_app.protocol import RequestError

    assert deadlines.request_budget_s({}, 5.0) == 5.0
    assert deadlines.request_budget_s({"x-router-timeout-ms": "2500"}, 5.0) == 2.5
    assert deadlines.request_budget_s({"x-router-timeout-ms": " 1500 "}, 5.0) == 1.5
    with pytest.raises(RequestError, match="whole number"):
        deadlines.request_budget_s({"x-router-timeout-ms": "1500.5"}, 5.0)  # the published schema: whole ms
    assert deadlines.request_budget_s({"x-router-timeout-ms": "60000"}, 5.0) == 5.0  # capped, never raised
    for bad in ("soon", "", "-5", "0", "nan", "inf", "1e400"):
        with pytest.raises(RequestError) as err:
            deadlines.request_budget_s({"x-router-timeout-ms": bad}, 5.0)
        assert err.value.status == 400 and err.value.param == "x-router-timeout-ms"
