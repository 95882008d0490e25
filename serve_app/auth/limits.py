"""Requests/min and tokens/min per key, counted in the ledger so that they hold across every
Dispatcher replica (and node, with Redis), not per replica.

Windows are fixed UTC minutes: simple to explain and one counter per key and minute. The price is
that a caller can fit up to twice its limit into the two seconds around a minute boundary; a
sliding window would need a second counter per check. Tokens are known only when the backend
answers (``usage``), so a request is admitted while the minute's tokens are *below* the limit, and
its tokens are added when it settles: a key can overshoot ``tokens_per_min`` by the requests it
already has in flight.
"""

from __future__ import annotations

import math

from serve_app.auth.keys import KeyEntry
from serve_app.auth.ledger import Ledger, RateResult
from serve_app.protocol import RequestError

WINDOW_S = 60.0


def window(now: float) -> tuple[str, float]:
    """(the window's name, when it ends) for epoch seconds ``now``."""
    start = math.floor(now / WINDOW_S) * WINDOW_S
    return f"m{int(start // WINDOW_S)}", start + WINDOW_S


def retry_after_s(now: float) -> int:
    """Whole seconds until the current window ends (at least 1)."""
    _, end = window(now)
    return max(1, math.ceil(end - now))


def has_limits(key: KeyEntry) -> bool:
    return key.policy.requests_per_min is not None or key.policy.tokens_per_min is not None


def check_rate(ledger: Ledger, key: KeyEntry, now: float) -> RateResult:
    """Count one request of ``key``, or raise the 429 (with ``Retry-After``) that names the limit."""
    name, end = window(now)
    p = key.policy
    # The counter lives until the end of the next window: a late settle can still add its tokens.
    result = ledger.hit(key.id, name, end + WINDOW_S, p.requests_per_min, p.tokens_per_min, now)
    if not result.allowed:
        limit = p.requests_per_min if result.limited_by == "requests_per_min" else p.tokens_per_min
        used = result.requests if result.limited_by == "requests_per_min" else result.tokens
        what = "requests" if result.limited_by == "requests_per_min" else "tokens"
        wait = retry_after_s(now)
        raise RequestError(
            429,
            f"rate limit: key {key.id!r} has used {used} of its {limit} {what} per minute; retry in {wait} s",
            type="rate_limit_error",
            param=result.limited_by,
            headers={"Retry-After": str(wait), "x-router-key": key.id},
        )
    return result
