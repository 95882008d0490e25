"""A tiny local aiohttp server standing in for the routing service, to test the load generator.

It runs in a background thread with its own event loop on 127.0.0.1 and a free port, answers
``/v1/route`` and ``/v1/chat/completions`` after ``delay_s``, replies with the statuses queued in
``statuses`` (then 200), and records how many requests were in flight at most.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest


@dataclass
class StubState:
    delay_s: float = 0.0
    statuses: list[int] = field(default_factory=list)  # served first, in order; then 200
    hang_s: float = 0.0  # when > 0, every request sleeps this long (to test client timeouts)
    in_flight: int = 0
    max_in_flight: int = 0
    bodies: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class StubServer:
    def __init__(self):
        self.state = StubState()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = None

    async def _handle(self, request):
        from aiohttp import web

        s = self.state
        body = await request.json()
        with s.lock:
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)
            s.bodies.append(body)
            s.headers.append({k.lower(): v for k, v in request.headers.items()})
            status = s.statuses.pop(0) if s.statuses else 200
        try:
            await asyncio.sleep(s.hang_s or s.delay_s)
        finally:
            with s.lock:
                s.in_flight -= 1
        if status != 200:
            return web.json_response({"error": {"message": f"stub status {status}"}}, status=status)
        if request.path.endswith("/route"):
            return web.json_response({"model": "small"}, headers={"x-router-model": "small"})
        return web.json_response(
            {"object": "chat.completion", "model": "large", "choices": [{"message": {"role": "assistant", "content": "ok"}}]},
            headers={"x-router-model": "large"},
        )

    async def _start(self):
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v1/route", self._handle)
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def start(self):
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self):
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


@pytest.fixture
def stub_server():
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture
def few_prompts():
    return [f"prompt number {i}: what is {i} plus {i}?" for i in range(20)]
