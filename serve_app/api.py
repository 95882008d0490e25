"""The HTTP surface: a FastAPI app over a ``RouterService``.

Bodies are read as bytes and validated by ``serve_app.parse`` against the models of
``serve_app.protocol`` (not by FastAPI's own validation), so that malformed JSON, NaN/Infinity λ
and the rest get our 4xx messages in OpenAI's error shape. ``/openapi.json`` (and ``/docs``)
publish those same models, with this app's pool and limits filled in, and every status a handler
can answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Optional

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from ray.serve.exceptions import BackPressureError

from serve_app.deadlines import TIMEOUT_HEADER, TIMEOUT_PATTERN, within_deadline
from serve_app.protocol import (
    REQUEST_MODELS,
    ChatCompletion,
    ErrorResponse,
    Health,
    ModelList,
    RequestError,
    RouteResponse,
    header_parameters,
    request_schemas,
)
from serve_app.serving import RouterService

log = logging.getLogger("ray.serve")

HealthFn = Callable[[], Awaitable[dict]]
# /healthz waits this long for the inner deployments before answering 503 "starting": while Serve
# is still starting them a call would otherwise hang until they are up.
HEALTH_TIMEOUT_S = 2.0


def _errors(*statuses: int) -> dict:
    reasons = {
        400: "The request is malformed, a field is invalid, or a prompt or list is over the app's limits (the message names it).",
        502: "Every backend tried failed (x-router-fallbacks lists why).",
        503: "Overloaded (retry after Retry-After seconds), starting, or no backends configured.",
        504: "The request's deadline (request_timeout_s, or x-router-timeout-ms) passed; its work was cancelled.",
        500: "An internal error.",
    }
    return {s: {"model": ErrorResponse, "description": reasons[s]} for s in statuses}


def build_fastapi_app(service: RouterService, health: Optional[HealthFn] = None) -> FastAPI:
    app = FastAPI(
        title="llm-router",
        version="0.1.0",
        description="Cost-aware LLM routing (cross-attention router): /v1/route says which model to use; "
        "/v1/chat/completions (OpenAI-compatible) routes and forwards.",
    )
    metrics = service.metrics

    async def handle(endpoint: str, call: Callable[[], Awaitable[Response]], headers=None) -> Response:
        t0 = time.perf_counter()
        try:
            # With headers: under the request's deadline (serve_app.deadlines; 504 past it).
            resp = await (call() if headers is None else within_deadline(call, headers, service.args.request_timeout_s))
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

    @app.post("/v1/route", response_model=RouteResponse, responses=_errors(400, 500, 503, 504),
              summary="Which pool model should answer each prompt, with every model's predicted quality, cost and reward")  # fmt: skip
    async def route(request: Request) -> Response:
        async def call() -> Response:
            headers: dict = {}  # [keys] x-router-key, x-router-lambda
            result = await service.route(await request.body(), request.headers, headers)  # [keys]
            return JSONResponse(result.model_dump(by_alias=True), headers=headers)  # [keys]

        return await handle("route", call, request.headers)

    @app.post("/v1/chat/completions", response_model=ChatCompletion, responses=_errors(400, 500, 502, 503, 504),
              summary="OpenAI-compatible chat: the router picks the model, forwards, and falls back on failure")  # fmt: skip
    async def chat(request: Request) -> Response:
        async def call() -> Response:
            return await service.chat(await request.body(), request.headers)

        return await handle("chat", call, request.headers)

    @app.get("/v1/models", response_model=ModelList, summary="The router pseudo-model and the pool")
    async def models() -> Response:
        return JSONResponse(service.models().model_dump())

    @app.get("/healthz", response_model=Health, responses=_errors(500, 503), summary="Liveness and the deployments' state")
    async def healthz() -> Response:
        async def call() -> Response:
            body = {"status": "ok", "pool": list(service.pool), "backends": sorted(service.backends),
                    "auth": service.gate.describe()}  # [keys] mode and counts only, nothing secret
            if health is not None:
                try:
                    body.update(await asyncio.wait_for(health(), HEALTH_TIMEOUT_S))
                except asyncio.TimeoutError:
                    body["status"] = "starting"
                    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
            return JSONResponse(body)

        return await handle("healthz", call)

    _publish_request_schemas(app, service)
    return app


def _publish_request_schemas(app: FastAPI, service: RouterService) -> None:
    """Put the request bodies (and the chat headers) into the OpenAPI schema: the handlers read raw
    bytes, so FastAPI cannot see them by itself."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            limits = service.limits
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request_schemas(list(service.pool), limits.max_prompt_chars, limits.max_prompts_per_request))
            for path, model in REQUEST_MODELS.items():
                op = schema["paths"][path]["post"]
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
                }
            timeout = {"name": TIMEOUT_HEADER, "in": "header", "required": False,
                       "description": "This request's deadline in milliseconds (capped at the app's request_timeout_s).",
                       "schema": {"type": "string", "pattern": TIMEOUT_PATTERN}}  # fmt: skip
            schema["paths"]["/v1/route"]["post"]["parameters"] = [timeout]
            chat = schema["paths"]["/v1/chat/completions"]["post"]
            chat["parameters"] = header_parameters() + [timeout]
            ok = chat["responses"]["200"]["content"]
            # Server-sent events (stream: true): OpenAI chat.completion.chunk objects, then [DONE].
            ok["text/event-stream"] = {"schema": {"description": "A chat.completion.chunk per event, then [DONE]."}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
