"""Every request has a deadline: ``request_timeout_s`` of the app args, which a caller may lower
(never raise) with the header ``x-router-timeout-ms``. The handler runs the request under
``asyncio.timeout`` of what is left, so work past the deadline is cancelled, not done: the
cancellation reaches the awaited Embedder/Scorer calls, and Serve drops a cancelled request that
is still queued. The deadline is also published in a context variable so that the retry of a
dying replica's call (``serve_app.retry``) never sleeps past it.

A request whose deadline passes is answered **504** (``deadline_exceeded``, OpenAI error shape):
the service is up but could not answer in time, which differs from overload (503 + Retry-After,
answered at once by Serve's queue limits before any work is done).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator, Mapping, Optional, TypeVar

from serve_app.protocol import RequestError

TIMEOUT_HEADER = "x-router-timeout-ms"
T = TypeVar("T")


@dataclass(frozen=True)
class Deadline:
    """A point in ``time.monotonic()`` time, and the budget it came from (for messages)."""

    at: float
    budget_s: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


_current: contextvars.ContextVar[Optional[Deadline]] = contextvars.ContextVar("router_deadline", default=None)


def current() -> Optional[Deadline]:
    """The deadline of the request being handled in this task (None outside a request)."""
    return _current.get()


@contextlib.contextmanager
def bound(deadline: Deadline) -> Iterator[Deadline]:
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


# The header's value: a whole number of milliseconds from 1,000 (what /openapi.json says). Below a
# second no routed LLM call can answer, so a shorter deadline is refused (400) rather than accepted
# and then failed (504) every time.
MIN_TIMEOUT_MS = 1000
TIMEOUT_PATTERN = r"^[1-9][0-9]{3,8}$"
_TIMEOUT_RE = re.compile(TIMEOUT_PATTERN)


def request_budget_s(headers: Mapping[str, str], default_s: float) -> float:
    """Seconds this request may take: the app's ``default_s``, or less if the caller asks.

    The header is a whole number of milliseconds >= ``MIN_TIMEOUT_MS``; anything else is a 400 (a
    typo must not silently mean "no deadline"). A value above the app's limit is capped, not refused: the
    caller's deadline is an upper bound on what it will wait, not a demand."""
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default_s
    if not _TIMEOUT_RE.fullmatch(raw.strip()):
        raise RequestError(400, f"{TIMEOUT_HEADER}: expected a whole number of milliseconds >= {MIN_TIMEOUT_MS}, got {raw!r}",
                           param=TIMEOUT_HEADER)  # fmt: skip
    return min(int(raw.strip()) / 1000.0, default_s)


def exceeded(deadline: Deadline) -> RequestError:
    return RequestError(504, f"the request did not finish within its deadline of {deadline.budget_s * 1000:.0f} ms; "
                        f"work on it was cancelled (raise {TIMEOUT_HEADER} or retry)", type="deadline_exceeded")  # fmt: skip


async def within_deadline(call: Callable[[], Awaitable[T]], headers: Mapping[str, str], default_s: float) -> T:
    """``await call()`` under this request's deadline (published for ``current()``); a 504 when it
    passes, and a 503 when a replica died and no retry got an answer (``serve_app.retry``)."""
    from serve_app.retry import is_replica_failure

    deadline = Deadline.after(request_budget_s(headers, default_s))
    with bound(deadline):
        timer = asyncio.timeout(deadline.remaining())
        try:
            async with timer:
                return await call()
        except TimeoutError:
            # Our deadline fired (asyncio may fire it a clock tick early, so ask the timer, not the
            # clock); any other TimeoutError is the callee's own.
            if timer.expired():
                raise exceeded(deadline) from None
            raise
        except Exception as exc:
            if is_replica_failure(exc):
                raise RequestError(503, f"a router replica failed and no retry answered in time ({type(exc).__name__}); "
                                   "retry later") from None  # fmt: skip
            raise
