"""Caller keys under a real Serve (one app on the session's Ray, a free loopback port): a tiny
artifact trained here (hashing encoder, synthetic table), the stub backend (a test double) as every
model's LLM with a provider key from the environment, auth required with a keys file and the SQLite
ledger in the replica. Then every log file Serve wrote is searched for the secrets."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest
import yaml

from tests.serve_app.auth.conftest import PROVIDER_ENV, PROVIDER_SECRET, add_key, bearer_digest, free_port
from tests.serve_app.test_service import call

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "router-keys-test"
PROMPT = "chat question: coffee holiday"


@pytest.fixture(scope="module")
def deployed(ray_session, stub, tmp_path_factory):
    from ray import serve

    from router.data.synthetic import make_synthetic_table
    from router.embeddings.hashing import HashingEncoder
    from router.model.artifact import save_artifact
    from router.model.config import TrainConfig
    from router.model.estimator import CrossAttentionPredictor
    from serve_app.app import build_app

    tmp = tmp_path_factory.mktemp("serve-keys")
    table = make_synthetic_table(n=150, seed=0)
    enc = HashingEncoder(64)
    pred = CrossAttentionPredictor(TrainConfig(max_epochs=4, hidden_dim=16, batch_size=64, seed=0)).fit(enc.encode(table.prompts), table.quality, table.cost, table.models)  # fmt: skip
    artifact = save_artifact(pred, tmp / "artifact", enc.name, enc.dim)
    backends = tmp / "backends.yaml"
    backends.write_text(yaml.safe_dump({"backends": [
        {"model": m, "base_url": f"http://127.0.0.1:{stub.port}/v1", "api_key_env": PROVIDER_ENV,
         "input_price_per_mtok": 100.0, "output_price_per_mtok": 100.0} for m in ("small", "medium", "large")]}))  # fmt: skip
    keys = tmp / "keys.yaml"
    secrets = {"good": add_key(keys, "good"), "capped": add_key(keys, "capped", budget_usd_per_day=0.005),
               "leaver": add_key(keys, "leaver")}  # fmt: skip
    args = {"artifact_path": str(artifact), "backends_file": str(backends), "keys_file": str(keys), "keys_poll_s": 0.5,
            "embedder_threads": 1, "embedder_batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.01},
            "backend_timeout_s": 2.0}  # fmt: skip
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name=APP, route_prefix="/")
    yield f"http://127.0.0.1:{port}", secrets, keys
    serve.delete(APP)
    serve.shutdown()


def chat(base, secret=None, **kw):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return call(base, "/v1/chat/completions", {"messages": [{"role": "user", "content": PROMPT}], **kw}, headers)


def test_keys_budgets_revocation_and_no_leaks_under_serve(deployed, stub):
    from router.cli.keys import run_revoke

    base, secrets, keys = deployed
    status, h, body = chat(base)
    assert status == 401 and json.loads(body)["error"]["type"] == "invalid_api_key" and h["WWW-Authenticate"].startswith("Bearer")
    status, h, body = chat(base, secrets["good"])
    assert status == 200, body
    assert h["x-router-key"] == "good" and float(h["x-router-spend-usd"]) > 0 and "x-router-lambda" in h
    status, h, raw = chat(base, secrets["good"], stream=True)
    assert status == 200 and raw.endswith(b"data: [DONE]\n\n")
    status, h, _ = call(base, "/v1/route", {"prompt": PROMPT}, {"Authorization": f"Bearer {secrets['good']}"})
    assert status == 200 and h["x-router-key"] == "good"
    # The capped key: 100 USD/Mtok x ~20 tokens = ~$0.002 a request against $0.005 a day.
    seen = [chat(base, secrets["capped"]) for _ in range(5)]
    assert [s for s, _, _ in seen][:2] == [200, 200] and seen[-1][0] == 429
    assert "daily budget of $0.005" in json.loads(seen[-1][2])["error"]["message"]
    # Revocation reaches the replica without a restart.
    assert chat(base, secrets["leaver"])[0] == 200
    run_revoke(argparse.Namespace(file=str(keys), id="leaver"))
    t0 = time.monotonic()
    while chat(base, secrets["leaver"])[0] != 401:
        assert time.monotonic() - t0 < 5.0, "the revoked key was still accepted after 5 s"
        time.sleep(0.1)
    status, _, body = call(base, "/healthz")
    health = json.loads(body)
    assert status == 200 and health["auth"]["mode"] == "required" and health["auth"]["revoked"] == 1
    assert stub.authorizations.get(bearer_digest(PROVIDER_SECRET), 0) >= 3  # the provider key reached the backend

    import ray

    session = Path(ray._private.worker._global_node.get_session_dir_path())
    logs = [p for p in (session / "logs" / "serve").rglob("*") if p.is_file()]
    assert logs, "Serve wrote no log files?"
    text = "\n".join(p.read_text(errors="replace") for p in logs) + body.decode()
    for secret in [*secrets.values(), PROVIDER_SECRET]:
        assert secret not in text and secret[-24:] not in text, "a secret is in Serve's logs"
    assert "reloaded: 3 keys (1 revoked)" in text  # the search covered the Dispatcher replica's own log
