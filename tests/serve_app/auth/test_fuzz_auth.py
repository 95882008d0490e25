"""The fuzzer (load_tests.fuzz, with its Authorization-header cases) against the FastAPI app with
caller keys required, served by uvicorn on a free loopback port (no Serve): no 5xx, every 4xx has
a message, no 401 echoes the presented key."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request

import pytest

from load_tests.fuzz import run_fuzz
from serve_app.api import build_fastapi_app
from tests.serve_app.auth.conftest import add_key, free_port


@pytest.fixture
def served(stub_backend, make_service, keys_path):
    import uvicorn

    secret = add_key(keys_path, "fuzzer", requests_per_min=100_000)
    svc = make_service(stub_backend.port, max_prompt_chars=2000)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_fastapi_app(svc), host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", secret
    server.should_exit = True
    thread.join(10)
    asyncio.run(svc.client.close())


def test_fuzzing_with_keys_required_gives_no_5xx(served):
    url, secret = served
    res = run_fuzz(url, examples=60, seed=3, api_key=secret)
    assert res["problems"] == [], res["problems"][:5]
    assert res["healthz_after"] == "200"
    assert res["statuses"].get("401", 0) >= 20  # the Authorization cases reached the key check
    assert res["statuses"].get("200", 0) >= 1 and res["statuses"].get("400", 0) >= 20  # and the bodies got past it
    req = urllib.request.Request(url + "/v1/route", data=b'{"prompt": "hi"}', headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401 and err.value.headers["WWW-Authenticate"].startswith("Bearer")
