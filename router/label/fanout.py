"""Calling backends for ``router label``: one chat completion per (prompt, model), asynchronously,
through the service's ``BackendClient``, under per-backend limits (``limits``), with retries and a
budget (``budget``).

A call is retried with exponential backoff (doubling from ``backoff_s``, jittered, at least the
server's ``Retry-After``, at most ``max_backoff_s``) on 429, 5xx, timeouts and connection errors;
other failures (400, 401, 404, a body that is not a chat completion) are final at once. A backend
that failed ``max_consecutive_failures`` calls in a row is taken as down: its remaining calls are
recorded as failed ("backend-down") without being sent. A failed call is recorded as failed with
its reason; it is never dropped and never scored.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Optional

from router.backends import BackendClient, BackendConfig, BackendError
from router.label.budget import Budget, CostEstimator
from router.label.config import BackendLimits
from router.label.limits import BackendLimiter

RETRYABLE_REASONS = ("timeout", "connect")
BUDGET = "budget"  # the reason of a call not made because the budget could not cover it
INTERRUPTED = "interrupted"  # the reason of a call not sent because the run was being stopped


@dataclass
class CallOutcome:
    """One call's result. ``status``: "ok", "failed" or "skipped" (not made: budget)."""

    model: str
    status: str
    reason: str = ""
    response: str = ""
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    cost: float = 0.0
    cost_source: str = ""  # "usage", or "estimate" when the answer had no usage
    attempts: int = 0
    latency_s: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def record(self) -> dict:
        return asdict(self)


@dataclass
class BackendStats:
    attempts: int = 0
    ok: int = 0
    retries: int = 0
    failed: Counter = field(default_factory=Counter)  # final failures by reason
    errors: Counter = field(default_factory=Counter)  # every failed attempt by reason (incl. retried ones)
    spend_usd: float = 0.0
    no_usage: int = 0
    skipped_budget: int = 0

    def as_dict(self, limiter: BackendLimiter) -> dict:
        return {
            "attempts": self.attempts, "ok": self.ok, "retries": self.retries, "failed": dict(self.failed),
            "attempt_errors": dict(self.errors), "spend_usd": self.spend_usd, "answers_without_usage": self.no_usage,
            "skipped_budget": self.skipped_budget, "concurrency_limit": limiter.concurrency,
            "rpm_limit": 60.0 / limiter.interval if limiter.interval else None, "max_in_flight": limiter.max_in_flight,
        }  # fmt: skip


def _parse_completion(data) -> tuple[Optional[str], Optional[int], Optional[int]]:
    """(text, prompt_tokens, completion_tokens) of a chat completion; text None if it is not one."""
    try:
        text = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None, None, None
    if not isinstance(text, str):
        return None, None, None
    usage = data.get("usage") if isinstance(data, dict) else None
    pt = ct = None
    if isinstance(usage, dict):
        pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not (isinstance(pt, int) and isinstance(ct, int) and pt >= 0 and ct >= 0):
            pt = ct = None
    return text, pt, ct


class Fanout:
    """Makes the calls; one instance per event loop (it owns the aiohttp session)."""

    def __init__(
        self,
        backends: dict[str, BackendConfig],
        limits: dict[str, BackendLimits],
        budget: Budget,
        *,
        timeout_s: float = 60.0,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_consecutive_failures: int = 20,
        estimator: Optional[CostEstimator] = None,
        seed: int = 0,
    ):
        self.backends = backends
        self.limiters = {name: BackendLimiter(limits[name].concurrency, limits[name].rpm) for name in backends}
        self.budget = budget
        self.estimator = estimator or CostEstimator()
        self.client = BackendClient(timeout_s)
        self.max_attempts, self.backoff_s, self.max_backoff_s = max_attempts, backoff_s, max_backoff_s
        self.max_consecutive_failures = max_consecutive_failures
        self.stats = {name: BackendStats() for name in backends}
        self.consecutive_failures: Counter = Counter()
        self.down: set[str] = set()
        self._rng = random.Random(seed)
        # Set by ``stop()``: no call is sent any more (nor retried); calls already sent run to their
        # answer, so an interrupted run never drops an answer it has paid for.
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True

    def _retryable(self, err: BackendError) -> bool:
        status = err.status
        return err.reason in RETRYABLE_REASONS or status == 429 or (status is not None and status >= 500)

    def _delay(self, attempt: int, err: BackendError) -> float:
        delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + self._rng.random() / 2)
        if err.retry_after_s is not None:
            delay = max(delay, err.retry_after_s)
        return min(delay, self.max_backoff_s)

    async def call(self, name: str, messages: list, max_tokens: int, temperature: float = 0.0, finishing: bool = False) -> CallOutcome:
        """One chat completion from backend ``name`` (retried, limited, within the budget; ``finishing``:
        see ``Budget.reserve``)."""
        backend = self.backends[name]
        stats = self.stats[name]
        if name in self.down:
            stats.failed["backend-down"] += 1
            return CallOutcome(name, "failed", "backend-down", detail="the backend failed too many calls in a row")
        chars = sum(len(str(m.get("content", ""))) if isinstance(m, dict) else len(str(m)) for m in messages)
        estimate = self.estimator.worst_case(backend, chars, max_tokens)
        if not self.budget.reserve(estimate, finishing):
            stats.skipped_budget += 1
            return CallOutcome(name, "skipped", BUDGET)
        body = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        started = time.perf_counter()
        err: Optional[BackendError] = None
        attempt = 0
        for attempt in range(1, self.max_attempts + 1):
            async with self.limiters[name].slot():
                if self.stopping:  # waited for a slot while the run was being stopped: never sent
                    self.budget.settle(estimate, 0.0)
                    return CallOutcome(name, "skipped", INTERRUPTED)
                stats.attempts += 1
                try:
                    data = await self.client.complete(backend, body)
                    err = None
                except BackendError as exc:
                    err = exc
            if err is None:
                text, pt, ct = _parse_completion(data)
                if text is None:
                    err = BackendError(name, "bad-response", "no choices[0].message.content")
                    break
                return self._success(name, backend, estimate, chars, text, pt, ct, attempt, time.perf_counter() - started)
            stats.errors[err.reason] += 1
            if not self._retryable(err) or attempt == self.max_attempts:
                break
            stats.retries += 1
            await asyncio.sleep(self._delay(attempt, err))
        assert err is not None
        self.budget.settle(estimate, 0.0)  # a failed call is assumed unpaid
        stats.failed[err.reason] += 1
        self.consecutive_failures[name] += 1
        if self.consecutive_failures[name] >= self.max_consecutive_failures:
            self.down.add(name)
        return CallOutcome(name, "failed", err.reason, attempts=attempt, latency_s=time.perf_counter() - started,
                           detail=err.detail[:300])  # fmt: skip

    def _success(self, name, backend, estimate, chars, text, pt, ct, attempts, latency) -> CallOutcome:
        stats = self.stats[name]
        if pt is not None and ct is not None:
            cost, source = backend.observed_cost(pt, ct), "usage"
            self.estimator.observe(name, chars, pt)
        else:
            cost, source = self.estimator.from_text(backend, chars, len(text)), "estimate"
            stats.no_usage += 1
        self.budget.settle(estimate, cost)
        stats.ok += 1
        stats.spend_usd += cost
        self.consecutive_failures[name] = 0
        return CallOutcome(name, "ok", response=text, prompt_tokens=pt, completion_tokens=ct, cost=cost,
                           cost_source=source, attempts=attempts, latency_s=latency)  # fmt: skip

    def stats_report(self) -> dict:
        return {name: s.as_dict(self.limiters[name]) for name, s in self.stats.items()}

    async def close(self) -> None:
        await self.client.close()
