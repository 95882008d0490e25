"""The FastAPI surface without Serve, driven through raw ASGI calls (no HTTP client needed)."""

from __future__ import annotations

import asyncio
import json

from ray.serve.exceptions import BackPressureError

from serve_app.api import build_fastapi_app
from serve_app.config import AppArgs
from serve_app.serving import RouterService
from tests.serve_app.conftest import asgi_call, stand_in_router


async def asgi_get(app, path: str):
    return await asgi_post(app, path, b"", method="GET")


async def asgi_post(app, path: str, body: bytes, method: str = "POST"):
    status, headers, raw = await asgi_call(app, method, path, body)
    return status, dict(headers), json.loads(raw)


def test_inner_queue_full_is_a_503_not_a_500(tmp_path):
    async def predict(prompts):
        raise BackPressureError(num_queued_requests=9, max_queued_requests=8, retry_after_s=2.0)

    service = RouterService(stand_in_router(), {}, AppArgs(artifact_path=str(tmp_path), auth="off"), predict)
    app = build_fastapi_app(service)

    async def go():
        try:
            return await asgi_post(app, "/v1/route", b'{"prompt": "hello"}')
        finally:
            await service.close()

    status, headers, body = asyncio.run(go())
    assert status == 503
    assert "overloaded" in body["error"]["message"]
    assert headers.get("retry-after") == "2"
