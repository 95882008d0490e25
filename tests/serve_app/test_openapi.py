"""The HTTP API describes itself: ``/openapi.json`` documents every body and status, and
schemathesis (``st run --checks all``) finds nothing against the live app.

The app here is the service's FastAPI app (``serve_app.api``) over a real router (trained here on
the synthetic table with the model-free hashing encoder) and the stub backend (a test double),
served by uvicorn on 127.0.0.1: everything a request meets except Serve's proxy and replicas,
which add no validation of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from load_tests.cluster import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_app(stub, tmp_path_factory):
    import uvicorn

    from router.core import Router
    from router.data.synthetic import make_synthetic_table
    from router.model.config import TrainConfig
    from serve_app.api import build_fastapi_app
    from serve_app.config import AppArgs, BackendConfig
    from serve_app.serving import RouterService

    table = make_synthetic_table(n=120, seed=0)
    # An ensemble router, so responses carry a number (not null) in every score's uncertainty.
    router = Router.untrained(TrainConfig(hidden_dim=8, max_epochs=2), "hash:64", ensemble={"members": 2, "domain_folds": 0})
    router.fit(router.embed(table.prompts), table.quality, table.cost, table.models)

    async def predict(prompts):
        return router.predict_embedded(router.embed(prompts))

    backends = {m: BackendConfig(model=m, base_url=f"http://127.0.0.1:{stub.port}/v1") for m in router.models}
    args = AppArgs(artifact_path=str(tmp_path_factory.mktemp("unused")), auth="off", max_prompt_chars=2000,
                   max_prompts_per_request=16)
    app = build_fastapi_app(RouterService(router, backends, args, predict))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_openapi_documents_bodies_and_errors(live_app):
    spec = _get(f"{live_app}/openapi.json")
    route = spec["paths"]["/v1/route"]["post"]
    body = route["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/RouteRequest")
    assert {"200", "400", "503"} <= set(route["responses"])
    req = spec["components"]["schemas"]["RouteRequest"]
    assert req["required"] == ["prompt"] and req["additionalProperties"] is False
    assert req["properties"]["model"]["anyOf"][0]["enum"] == ["small", "medium", "large"]
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert {"400", "502", "503"} <= set(chat["responses"])
    assert {p["name"] for p in chat["parameters"]} == {"x-router-lambda", "x-router-reward", "x-router-timeout-ms"}
    assert "504" in chat["responses"] and "504" in route["responses"]
    assert "ErrorResponse" in spec["components"]["schemas"]
    score = spec["components"]["schemas"]["ModelScore"]["properties"]
    assert {"quality", "cost", "reward", "uncertainty"} <= set(score)


@pytest.mark.skipif(shutil.which("st") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "st")),
                    reason="schemathesis is not installed (pip install -e '.[dev]')")  # fmt: skip
def test_schemathesis_finds_nothing(live_app, tmp_path):
    st = shutil.which("st") or os.path.join(os.path.dirname(sys.executable), "st")
    # CI-sized: up to 40 generated requests per operation and phase (a few hundred in all).
    config = Path(__file__).resolve().parents[2] / "schemathesis.toml"
    cmd = [st, "--config-file", str(config), "run", f"{live_app}/openapi.json", "--checks", "all", "--max-examples", "40", "--seed", "1",
           "--workers", "1", "--no-color", "--request-timeout", "20", "--max-response-time", "20"]  # fmt: skip
    env = dict(os.environ, SCHEMATHESIS_HOOKS="", HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path / "hyp"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "No issues found" in proc.stdout or "passed" in proc.stdout.lower(), proc.stdout[-3000:]


def test_health_answers_503_while_the_deployments_start():
    """/healthz does not hang while an inner deployment is still starting."""
    from router.core import Router
    from serve_app.api import build_fastapi_app
    from serve_app.config import AppArgs
    from serve_app.serving import RouterService
    from tests.serve_app.conftest import stand_in_router
    from tests.serve_app.test_api import asgi_get

    async def never():
        await asyncio.sleep(3600)

    assert Router  # the stand-in is a Router
    app = build_fastapi_app(RouterService(stand_in_router(), {}, AppArgs(artifact_path=".", auth="off"), None), health=never)
    t0 = time.monotonic()
    status, headers, body = asyncio.run(asgi_get(app, "/healthz"))
    assert status == 503 and body["status"] == "starting" and headers.get("retry-after") == "1"
    assert time.monotonic() - t0 < 10
