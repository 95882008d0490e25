"""The HTTP surface: a FastAPI app over a ``RouterService``.

Bodies are read as bytes and parsed by ``serve_app.routing`` (not by FastAPI's validation) so that
malformed JSON, NaN/Infinity λ and the rest get our 4xx messages in OpenAI's error shape.
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray.serve.exceptions import BackPressureError

from serve_app.protocol import RequestError
from serve_app.serving import RouterService

log = logging.getLogger("ray.serve")

HealthFn = Callable[[], Awaitable[dict]]


def build_fastapi_app(service: RouterService, health: Optional[HealthFn] = None) -> FastAPI:
    app = FastAPI(title="llm-router", description="Cost-aware LLM routing (cross-attention router).")
    metrics = service.metrics

    async def handle(endpoint: str, call: Callable[[], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        try:
            resp = await call()
        except RequestError as exc:
            resp = JSONResponse(exc.to_body(), status_code=exc.status, headers=exc.headers)  # [keys] headers: Retry-After, WWW-Authenticate
        except BackPressureError as exc:
            # An inner deployment's queue (max_queued_requests) is full: shed load as Serve's own
            # proxy does at the ingress, with a 503 the caller may retry, not a 500.
            err = RequestError(503, f"the router is overloaded ({exc}); retry later")
            headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))} if getattr(exc, "retry_after_s", None) else None
            resp = JSONResponse(err.to_body(), status_code=503, headers=headers)
        except Exception as exc:  # noqa: BLE001 - one clear 500 instead of a dropped connection
            log.exception("unhandled error in %s", endpoint)
            resp = JSONResponse(RequestError(500, f"internal error: {type(exc).__name__}: {exc}").to_body(), status_code=500)
        metrics.requests.inc(1, tags={"endpoint": endpoint, "status": str(resp.status_code)})
        if endpoint == "route":
            metrics.latency.observe((time.perf_counter() - t0) * 1000.0, tags={"stage": "total", "endpoint": endpoint})
        return resp

    @app.post("/v1/route")
    async def route(request: Request) -> Response:
        async def call() -> Response:
            headers: dict = {}  # [keys] x-router-key, x-router-lambda
            result = await service.route(await request.body(), request.headers, headers)  # [keys]
            return JSONResponse(result.model_dump(by_alias=True), headers=headers)  # [keys]

        return await handle("route", call)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        async def call() -> Response:
            return await service.chat(await request.body(), request.headers)

        return await handle("chat", call)

    @app.get("/v1/models")
    async def models() -> Response:
        return JSONResponse(service.models().model_dump())

    @app.get("/healthz")
    async def healthz() -> Response:
        async def call() -> Response:
            body = {"status": "ok", "pool": list(service.pool.models), "backends": sorted(service.backends),
                    "auth": service.gate.describe()}  # [keys] mode and counts only, nothing secret
            if health is not None:
                body.update(await health())
            return JSONResponse(body)

        return await handle("healthz", call)

    return app
