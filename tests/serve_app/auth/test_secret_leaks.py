"""No secret leaks: a request mix (the load suite's fixed bad inputs, valid route/chat/stream calls,
wrong, revoked and rate-limited keys, a failing backend) through the FastAPI app with known caller
secrets and a known provider API key; then every log record (all loggers, DEBUG), every response
body and header, every metric name/label/value, /healthz and the files on disk are searched for them."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from load_tests.fuzz import fixed_cases
from serve_app.api import build_fastapi_app
from tests.serve_app.auth.conftest import PROVIDER_SECRET, add_key, bearer_digest
from tests.serve_app.conftest import asgi_call

BODY_MARKER = "zebra-marker-7731"  # a word only request bodies contain


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record) + (logging.Formatter().formatException(record.exc_info) if record.exc_info else ""))


@pytest.fixture
def capture_logs():
    cap = Capture()
    loggers = [logging.getLogger(n) for n in ("", "ray", "ray.serve", "serve_app", "aiohttp", "uvicorn", "fastapi")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(cap)
        lg.setLevel(logging.DEBUG)
    yield cap
    for lg, level in saved:
        lg.removeHandler(cap)
        lg.setLevel(level)


@pytest.mark.parametrize("log_bodies", [False, True])
def test_no_secret_reaches_logs_errors_metrics_healthz_or_disk(stub_backend, make_service, keys_path, recorder, capture_logs, log_bodies):
    good = add_key(keys_path, "good", budget_usd_per_day=0.002, default_lambda=0.0)
    limited = add_key(keys_path, "limited", requests_per_min=2)
    revoked = add_key(keys_path, "revoked", revoked=True)
    secrets = [good, limited, revoked, PROVIDER_SECRET]
    svc = make_service(stub_backend.port, log_request_bodies=log_bodies)
    app = build_fastapi_app(svc)
    msg = {"messages": [{"role": "user", "content": f"please prove {BODY_MARKER} now"}]}
    answers = []

    async def go():
        send = lambda *a, **k: asgi_call(app, *a, **k)  # noqa: E731
        for case in fixed_cases(max_prompt_chars=2000):  # the load suite's known-bad inputs, with a valid key
            answers.append(await send(case.method, case.path, case.body, {**case.headers, "authorization": f"Bearer {good}"}))
        for headers in ({}, {"authorization": f"Bearer {good[:-4]}beef"}, {"authorization": f"Bearer {revoked}"},
                        {"authorization": good}, {"authorization": f"Bearer {good} {limited}"}):  # fmt: skip
            answers.append(await send("POST", "/v1/chat/completions", json.dumps(msg).encode(), headers))
        for _ in range(3):
            answers.append(await send("POST", "/v1/route", json.dumps({"prompt": BODY_MARKER}).encode(), {"authorization": f"Bearer {limited}"}))
        for stream in (False, True, False, False):  # the last ones hit the $0.002 cap
            body = json.dumps({**msg, "stream": stream}).encode()
            answers.append(await send("POST", "/v1/chat/completions", body, {"authorization": f"Bearer {good}"}))
        stub_backend.behaviour.fail = {"large": 500, "medium": 503, "small": 502}
        svc.gate.store.keys["good"].policy.budget_usd_per_day = None
        answers.append(await send("POST", "/v1/chat/completions", json.dumps(msg).encode(), {"authorization": f"Bearer {good}"}))
        answers.append(await send("GET", "/healthz"))
        answers.append(await send("GET", "/v1/models"))
        await svc.close()

    asyncio.run(go())
    statuses = [a[0] for a in answers]
    assert {401, 429, 200, 400, 502} <= set(statuses), statuses  # the mix reached every kind of answer
    assert not [s for s in statuses if s >= 500 and s not in (502, 503)]
    health = json.loads(answers[-2][2])
    assert health["auth"] == {"mode": "required", "keys": 3, "revoked": 1, "ledger": "sqlite", "keys_file_ok": True}

    haystacks = {
        "logs": "\n".join(capture_logs.lines),
        "responses": "\n".join(f"{s} {h} {b.decode('utf-8', 'replace')}" for s, h, b in answers),
        "metrics": repr(recorder.calls),
        "keys file": keys_path.read_text(),
        "ledger": b"".join(p.read_bytes() for p in keys_path.parent.glob("keys.ledger.sqlite*")).decode("latin-1"),
    }
    for where, text in haystacks.items():
        for secret in secrets:
            for piece in (secret, secret[-24:]):  # also no tail of one (e.g. a truncated echo)
                assert piece not in text, f"a secret leaked into {where}"
    # Request bodies are logged only when the debug setting asks for it.
    assert (BODY_MARKER in haystacks["logs"]) is log_bodies
    assert "good" in haystacks["metrics"]  # the key id is the metrics' label
    assert stub_backend.authorizations.get(bearer_digest(PROVIDER_SECRET), 0) >= 3  # the provider key was really used
