"""Fixtures of the service tests: a stub backend (test double) and a keyword predictor (test double)."""

from __future__ import annotations

import numpy as np
import pytest

from router.prediction import Prediction
from serve_app.testing.stub_backend import Behaviour, StubBackend

POOL = ("small", "medium", "large")
PRICE = {"small": 1e-5, "medium": 1e-4, "large": 1e-3}


def keyword_prediction(prompts: list[str]) -> Prediction:
    """TEST DOUBLE for the Embedder -> Scorer chain: 'chat' prompts suit every model, 'code' prompts
    suit medium and large, anything else only large."""
    q = []
    for p in prompts:
        if "chat" in p:
            q.append([0.85, 0.86, 0.9])
        elif "code" in p:
            q.append([0.2, 0.85, 0.9])
        else:
            q.append([0.1, 0.3, 0.9])
    cost = np.tile([PRICE[m] for m in POOL], (len(prompts), 1))
    return Prediction(quality=np.asarray(q, dtype=np.float64), cost=cost)


class _FixedPool:
    """TEST DOUBLE of a fitted predictor: only the pool and the cost scale (the service's
    predictions come from ``keyword_prediction``)."""

    def __init__(self, models, c_ref):
        self.models, self.c_ref_ = tuple(models), float(c_ref)


def stand_in_router(models=POOL, c_ref: float = sum(PRICE.values()) / 3):
    """A ``router.core.Router`` over a fixed pool, so the service decides with the real ``Router.decide``."""
    from router.core import Router

    return Router(_FixedPool(models, c_ref), encoder_name="hash:64")


async def asgi_call(app, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                    stay_connected: bool = False) -> tuple[int, list[tuple[str, str]], bytes]:
    """One HTTP request straight into an ASGI app (no server, no client library): the status, the
    response headers and the raw body. ``stay_connected``: the client does not hang up after sending
    (a handler waiting for a deadline is then not cancelled by a disconnect)."""
    import asyncio

    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        if stay_connected:
            await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    raw_headers = [(b"content-type", b"application/json")]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": raw_headers,
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}  # fmt: skip
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]], out


def run_service(service, coro):
    """Run ``coro`` and close the service's backend client afterwards."""
    import asyncio

    async def go():
        try:
            return await coro
        finally:
            await service.close()

    return asyncio.run(go())


@pytest.fixture
def stub_backend():
    stub = StubBackend(Behaviour())
    stub.start_in_thread()
    yield stub
    stub.stop_thread()
