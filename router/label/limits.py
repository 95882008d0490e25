"""Per-backend call limits: requests in flight (a semaphore) and requests started per minute
(starts spaced evenly, 60 / rpm seconds apart, so no burst ever exceeds the rate)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Optional


class BackendLimiter:
    def __init__(self, concurrency: int, rpm: Optional[float] = None):
        self.concurrency = concurrency
        self.interval = 60.0 / rpm if rpm else 0.0
        self._sem: Optional[asyncio.Semaphore] = None  # made in the loop that uses it
        self._next_start = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.starts: list[float] = []  # monotonic start times (the RPM test and the benchmark read them)

    @contextlib.asynccontextmanager
    async def slot(self):
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        async with self._sem:
            if self.interval:
                now = time.monotonic()
                start = max(now, self._next_start)
                self._next_start = start + self.interval
                if start > now:
                    await asyncio.sleep(start - now)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.starts.append(time.monotonic())
            try:
                yield
            finally:
                self.in_flight -= 1
