"""Batching for the Embedder and the Scorer: no idle wait, natural batches under load.

``NaturalBatcher`` is a small asyncio queue in front of one batched function. A call that arrives
while the function is idle runs at once, alone (no ``batch_wait_timeout_s`` to sit through); calls
that arrive while a batch runs queue up, and the next batch is everything that queued meanwhile (up
to ``max_batch_size`` calls and ``max_batch_items`` items). Under load the batches grow by
themselves to what the function can absorb; at low load nothing waits.

Ray Serve's ``@serve.batch`` (2.60) does not do this with ``batch_wait_timeout_s=0``: its loop
forms the next batch as soon as the first call of it arrives (while the previous batch still runs)
and parks it on the ``max_concurrent_batches`` semaphore, so under load it runs a chain of batches
of about one call each (``serve/batching.py``: ``_process_batches`` awaits ``wait_for_batch`` and
only then the semaphore). Here a batch is formed only when a slot is free.

Also here, as plain functions: ``token_chunks`` (less padding: sort by token length and cut into
chunks under a padded-token budget) and ``torch_threads_for`` (torch threads from the CPUs Ray gave
a replica, so replicas x threads never exceed them).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any, Awaitable, Callable, Generic, Optional, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchFn = Callable[[list[Any]], Awaitable[list[Any]]]


class NaturalBatcher(Generic[T, R]):
    """``await batcher.submit(x)`` -> ``fn([.., x, ..])[i]``, with ``fn`` run on natural batches.

    ``fn`` gets a list of submitted values and returns one result per value, in order. ``size_of``
    says how many items a value holds (a request with a list of prompts is one call of several
    items); a batch holds at most ``max_batch_size`` calls and ``max_batch_items`` items, except
    that a single call bigger than ``max_batch_items`` still runs (alone). At most
    ``max_concurrent_batches`` batches run at once (1 for a CPU model that uses every thread it
    has; 2 lets a GPU encoder's next batch be tokenised while the current one runs).

    ``batch_wait_timeout_s`` > 0 brings back the classic wait: a batch that starts with free slots
    and an unfull queue waits up to that long for more calls first. 0 (the default) never waits.

    A call cancelled while queued (its request's deadline passed) is dropped before it runs. Must
    be created and used on one event loop (a replica's).
    """

    def __init__(self, fn: BatchFn, max_batch_size: int = 64, max_batch_items: Optional[int] = None,
                 max_concurrent_batches: int = 1, batch_wait_timeout_s: float = 0.0,
                 size_of: Callable[[Any], int] = lambda _: 1):  # fmt: skip
        self.fn = fn
        self.size_of = size_of
        self.configure(max_batch_size, max_batch_items, max_concurrent_batches, batch_wait_timeout_s)
        self._queue: deque[tuple[Any, asyncio.Future]] = deque()
        self._running = 0
        self._waiting = False
        self.batches = 0  # counters, for tests and describe()
        self.calls = 0

    def configure(self, max_batch_size: int, max_batch_items: Optional[int] = None, max_concurrent_batches: int = 1,
                  batch_wait_timeout_s: float = 0.0) -> None:  # fmt: skip
        """New limits (a live ``user_config`` update); they apply from the next batch on."""
        if max_batch_size < 1 or max_concurrent_batches < 1 or (max_batch_items is not None and max_batch_items < 1):
            raise ValueError("max_batch_size, max_batch_items and max_concurrent_batches must be >= 1")
        if batch_wait_timeout_s < 0:
            raise ValueError("batch_wait_timeout_s must be >= 0")
        self.max_batch_size = int(max_batch_size)
        self.max_batch_items = None if max_batch_items is None else int(max_batch_items)
        self.max_concurrent_batches = int(max_concurrent_batches)
        self.batch_wait_timeout_s = float(batch_wait_timeout_s)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, value: T) -> R:
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((value, fut))
        self._kick()
        return await fut

    # -- internals ------------------------------------------------------------------------------
    def _kick(self) -> None:
        while self._queue and self._running < self.max_concurrent_batches and not self._waiting:
            if self.batch_wait_timeout_s > 0 and self._fill() < 1.0:
                self._waiting = True
                asyncio.get_running_loop().call_later(self.batch_wait_timeout_s, self._end_wait)
                return
            batch = self._take()
            if batch:
                self._running += 1
                asyncio.ensure_future(self._run(batch))

    def _end_wait(self) -> None:
        self._waiting = False
        if self._queue and self._running < self.max_concurrent_batches:
            batch = self._take()
            if batch:
                self._running += 1
                asyncio.ensure_future(self._run(batch))
        self._kick()

    def _fill(self) -> float:
        """How full the next batch would be (1.0: a limit is reached)."""
        n = len(self._queue)
        if n >= self.max_batch_size:
            return 1.0
        if self.max_batch_items is not None and sum(self.size_of(v) for v, _ in self._queue) >= self.max_batch_items:
            return 1.0
        return n / self.max_batch_size

    def _take(self) -> list[tuple[Any, asyncio.Future]]:
        batch: list[tuple[Any, asyncio.Future]] = []
        items = 0
        while self._queue and len(batch) < self.max_batch_size:
            value, fut = self._queue[0]
            if fut.done():  # cancelled while queued: never run it
                self._queue.popleft()
                continue
            size = self.size_of(value)
            if batch and self.max_batch_items is not None and items + size > self.max_batch_items:
                break
            self._queue.popleft()
            batch.append((value, fut))
            items += size
        return batch

    async def _run(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        try:
            self.batches += 1
            self.calls += len(batch)
            results = await self.fn([v for v, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batched function returned {len(results)} results for {len(batch)} calls")
            for (_, fut), res in zip(batch, results):
                if not fut.done():
                    fut.set_result(res)
        except BaseException as exc:  # noqa: BLE001 - every waiting caller gets the error
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._running -= 1
            self._kick()


def token_chunks(lengths: Sequence[int], max_tokens: int, max_size: Optional[int] = None) -> list[list[int]]:
    """Indices of ``lengths`` (tokens per text) in chunks that pad little: longest first, and a
    chunk grows while (its size) x (its longest) stays within ``max_tokens`` (and ``max_size``).

    A chunk is padded to its longest text, so sorting puts similar lengths together; the budget
    caps the padded tensor (memory on a GPU, attention cost on a CPU). A text longer than the
    budget gets a chunk of its own. The order inside chunks is longest first; callers put results
    back by index."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: -int(lengths[i]))
    chunks: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        n = max(1, int(lengths[i]))
        if cur and ((len(cur) + 1) * longest > max_tokens or (max_size is not None and len(cur) >= max_size)):
            chunks.append(cur)
            cur, longest = [], 0
        if not cur:
            longest = n
        cur.append(i)
    if cur:
        chunks.append(cur)
    return chunks


def torch_threads_for(num_cpus: Optional[float], requested: Optional[int] = None) -> int:
    """torch threads for a replica that Ray gave ``num_cpus`` CPUs: the whole CPUs it holds (at
    least 1: a process computes on its own thread), or ``requested`` if that is fewer. Never more
    than it holds, so replicas x threads never exceed the CPUs the deployment reserved."""
    held = max(1, int(math.floor((num_cpus or 0.0) + 1e-9)))
    return held if requested is None else max(1, min(int(requested), held))


def assigned_cpus() -> Optional[float]:
    """The CPUs Ray assigned to the calling actor or task (None outside Ray)."""
    try:
        import ray

        if not ray.is_initialized():
            return None
        return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))
    except Exception:  # noqa: BLE001 - not in a Ray worker
        return None
