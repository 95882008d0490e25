"""Retrying the Embedder and Scorer calls when a replica dies under them.

Both calls are pure functions of the prompts, so running one again on another replica (or on the
replacement Serve starts) gives the same answer: the only cost of a retry is time. A call is
retried when it failed because its replica went away:

* ``RayActorError`` and its subclasses ``ActorDiedError`` (the replica process died mid-call) and
  ``ActorUnavailableError`` (it cannot be reached right now, e.g. its node is going away);
* ``ObjectLostError`` and subclasses (``OwnerDiedError``...): the embeddings handed from the
  Embedder to the Scorer lived on a node that died;
* ``BackPressureError`` from a handle: its queue is full, which with the shipped limits (every
  inner queue holds at least what the ingress lets in, ``deploy/serve_config.yaml``) happens only
  while requests pile up for a replica that is gone. It is retried after its ``retry_after_s`` only
  when that fits in the deadline; otherwise it is raised at once and the caller gets a 503.

Everything else (a bug, a bad input) is raised at once. Waits grow exponentially with full jitter
(so the requests of a dead replica do not all come back at the same instant) and never run past
the request's deadline (``serve_app.deadlines``): when the next wait would, the last error is
raised. Chat forwarding does not use this: a backend may be retried only before its first byte,
which ``RouterService.chat`` handles by falling back to the next backend.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Awaitable, Callable, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from serve_app import deadlines

log = logging.getLogger("ray.serve")
T = TypeVar("T")


def _retryable_types() -> tuple[type[BaseException], ...]:
    from ray.exceptions import ObjectLostError, RayActorError
    from ray.serve.exceptions import BackPressureError

    return (RayActorError, ObjectLostError, BackPressureError)


def is_replica_failure(exc: BaseException) -> bool:
    """A replica (or the object it produced) went away; overload (BackPressureError) is not this."""
    from ray.exceptions import ObjectLostError, RayActorError

    return isinstance(exc, (RayActorError, ObjectLostError))


def is_retryable(exc: BaseException) -> bool:
    """True for the failures of a replica that went away (see the module docstring)."""
    return isinstance(exc, _retryable_types())


class RetryPolicy(BaseModel):
    """How pure deployment calls are retried (``AppArgs.replica_retry``)."""

    model_config = ConfigDict(extra="forbid")

    # Enough to outlast a replica's replacement (seconds; tens of seconds on a loaded machine): with
    # backoff capped at max_backoff_s the request's deadline, not this count, is what ends retrying.
    # With six (about 1 s of retrying) the killed-Embedder smoke test once failed a request on a
    # loaded machine (cause not pinned down; retrying longer costs only time).
    max_attempts: int = Field(40, ge=1, le=1000, description="Calls at most, the first included.")
    initial_backoff_s: float = Field(0.05, ge=0.0, le=10.0, description="Wait before the first retry (the cap of its jitter).")
    max_backoff_s: float = Field(1.0, ge=0.0, le=60.0, description="Longest wait between two calls.")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Wait before retry number ``retry`` (1-based): full jitter over an exponential cap."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * (2 ** (retry - 1)))
        return rng.uniform(0.0, cap)


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    deadline: Optional[deadlines.Deadline] = None,
    on_retry: Optional[Callable[[BaseException], None]] = None,
    rng: Optional[random.Random] = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``await call()``, again after a replica failure while attempts and the deadline allow.

    ``deadline`` defaults to the current request's (``serve_app.deadlines.current()``)."""
    deadline = deadline if deadline is not None else deadlines.current()
    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:  # noqa: BLE001 - filtered just below
            if not is_retryable(exc) or attempt >= policy.max_attempts:
                raise
            wait = policy.backoff(attempt, rng)
            retry_after = getattr(exc, "retry_after_s", None)
            if retry_after is not None:
                wait = max(wait, float(retry_after))
            if deadline is not None and wait >= deadline.remaining():
                raise  # no time left to try again: the caller answers now
            log.warning("replica call failed (%s: %s); retry %d in %.0f ms", type(exc).__name__, (str(exc).splitlines() or [""])[0][:200],
                        attempt, wait * 1000)  # fmt: skip
            if on_retry is not None:
                on_retry(exc)
            await sleep(wait)
