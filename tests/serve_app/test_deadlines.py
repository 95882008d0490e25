"""Deadlines through the HTTP surface (raw ASGI, no Serve): past its deadline a request is a 504 in
OpenAI's error shape and its work is cancelled; a bad x-router-timeout-ms is a 400; a replica that
died and was not replaced in time is a 503, not a 500."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from ray.exceptions import ActorDiedError

from serve_app.api import build_fastapi_app
from serve_app.config import AppArgs
from serve_app.serving import RouterService
from tests.serve_app.conftest import asgi_call, keyword_prediction, stand_in_router


async def post(app, path: str, body: bytes, headers: dict | None = None):
    status, _, raw = await asgi_call(app, "POST", path, body, headers, stay_connected=True)
    return status, json.loads(raw)


def service_with(predict, tmp_path, **args):
    return RouterService(stand_in_router(), {}, AppArgs(artifact_path=str(tmp_path), auth="off", **args), predict)


def test_past_the_deadline_is_a_504_and_the_work_is_cancelled(tmp_path):
    state = {"cancelled": False, "finished": False}

    async def slow_predict(prompts):
        try:
            await asyncio.sleep(4.0)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise
        state["finished"] = True
        return keyword_prediction(prompts)

    service = service_with(slow_predict, tmp_path, request_timeout_s=5.0, backend_timeout_s=5.0)
    app = build_fastapi_app(service)

    async def go():
        t0 = time.perf_counter()
        status, body = await post(app, "/v1/route", b'{"prompt": "chat"}', {"x-router-timeout-ms": "1000"})
        elapsed = time.perf_counter() - t0
        await service.close()
        return status, body, elapsed

    status, body, elapsed = asyncio.run(go())
    assert status == 504 and body["error"]["type"] == "deadline_exceeded" and "1000 ms" in body["error"]["message"]
    assert elapsed < 2.5
    assert state == {"cancelled": True, "finished": False}


def test_the_app_deadline_applies_without_a_header(tmp_path):
    async def slow_predict(prompts):
        await asyncio.sleep(2.0)

    service = service_with(slow_predict, tmp_path, request_timeout_s=0.1, backend_timeout_s=0.1)
    status, body = asyncio.run(post(build_fastapi_app(service), "/v1/route", b'{"prompt": "chat"}'))
    assert status == 504


def test_a_request_within_its_deadline_answers(tmp_path):
    async def predict(prompts):
        return keyword_prediction(prompts)

    service = service_with(predict, tmp_path)
    status, body = asyncio.run(post(build_fastapi_app(service), "/v1/route", b'{"prompt": "chat"}', {"x-router-timeout-ms": "2000"}))
    assert status == 200 and body["decisions"][0]["model"] == "small"


@pytest.mark.parametrize("value", ["soon", "-1", "0", "nan", "999"])
def test_a_bad_timeout_header_is_a_400(tmp_path, value):
    async def predict(prompts):
        return keyword_prediction(prompts)

    service = service_with(predict, tmp_path)
    status, body = asyncio.run(post(build_fastapi_app(service), "/v1/route", b'{"prompt": "chat"}', {"x-router-timeout-ms": value}))
    assert status == 400 and body["error"]["param"] == "x-router-timeout-ms"


def test_a_replica_that_stays_dead_is_a_503(tmp_path):
    async def predict(prompts):
        raise ActorDiedError()

    service = service_with(predict, tmp_path)
    status, body = asyncio.run(post(build_fastapi_app(service), "/v1/route", b'{"prompt": "chat"}'))
    assert status == 503 and "replica failed" in body["error"]["message"]


def test_the_deadline_must_fit_one_backend_attempt(tmp_path):
    with pytest.raises(ValueError, match="request_timeout_s"):
        AppArgs(artifact_path=str(tmp_path), auth="off", request_timeout_s=5, backend_timeout_s=10)
