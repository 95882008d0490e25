"""Fixtures of the caller-key tests: keys files, a service with auth required (keyword predictor and
stub backend, both test doubles), recording metrics, and a real redis-server when one is installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from serve_app.auth.keys import KeyEntry, KeyPolicy, KeysFile, hash_secret, load_keys_file, new_secret, write_keys_file
from serve_app.config import AppArgs, BackendConfig
from serve_app.metrics import RouterMetrics
from serve_app.serving import RouterService
from tests.serve_app.conftest import POOL, PRICE, keyword_prediction, stand_in_router

C_REF = sum(PRICE.values()) / 3
# The stub backend reports whitespace tokens: a 4-word prompt plus its 16-word answer is 20 tokens.
# These prices make that cost exactly the keyword predictor's predicted cost of the model.
TOKEN_PRICE = {m: PRICE[m] / 20 * 1e6 for m in POOL}
PROVIDER_SECRET = "sk-provider-TOPSECRET-0123456789abcdef"
# In the environment before the session's Ray starts (conftests load before any fixture runs), so
# that Serve replicas inherit it the way a deployment's provider keys reach them.
PROVIDER_ENV = "ROUTER_TEST_PROVIDER_KEY"
os.environ.setdefault(PROVIDER_ENV, PROVIDER_SECRET)


def bearer_digest(secret: str) -> str:
    import hashlib

    return hashlib.sha256(f"Bearer {secret}".encode()).hexdigest()


def add_key(path: Path, key_id: str, revoked: bool = False, **policy) -> str:
    """Add a key to the keys file at ``path`` (created if missing); returns its secret."""
    keys = load_keys_file(path) if path.exists() else KeysFile()
    secret = new_secret(key_id)
    keys.keys.append(KeyEntry(id=key_id, hash=hash_secret(secret), revoked=revoked, policy=KeyPolicy(**policy)))
    write_keys_file(keys, path)
    return secret


class Recorder:
    """Metrics that remember every call (name, tags, value), for checking labels and values."""

    def __init__(self):
        self.calls: list[tuple[str, dict, float]] = []

    def factory(self, name, *a, **k):
        rec = self

        class _M:
            def inc(self, value=1, tags=None):
                rec.calls.append((name, dict(tags or {}), value))

            observe = set = inc

        return _M()

    def metrics(self) -> RouterMetrics:
        return RouterMetrics(self.factory, self.factory, self.factory)

    def total(self, name: str, **tags) -> float:
        return sum(v for n, t, v in self.calls if n == name and all(t.get(k) == w for k, w in tags.items()))

    def by_tags(self, name: str) -> dict:
        out = defaultdict(float)
        for n, t, v in self.calls:
            if n == name:
                out[tuple(sorted(t.items()))] += v
        return dict(out)


@pytest.fixture
def keys_path(tmp_path) -> Path:
    return tmp_path / "keys.yaml"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_service(tmp_path, keys_path, recorder, monkeypatch):
    """``make(port, **app_args)``: a RouterService with auth required on ``keys_path`` (SQLite ledger in tmp)."""
    made = []

    def make(port, backends=POOL, **kw) -> RouterService:
        async def predict(prompts):
            return keyword_prediction(prompts)

        cfgs = {m: BackendConfig(model=m, base_url=f"http://127.0.0.1:{port}/v1", api_key_env=PROVIDER_ENV,
                                 input_price_per_mtok=TOKEN_PRICE[m], output_price_per_mtok=TOKEN_PRICE[m]) for m in backends}  # fmt: skip
        args = AppArgs(artifact_path=str(tmp_path), keys_file=str(keys_path), keys_poll_s=kw.pop("keys_poll_s", 0.2), **kw)
        svc = RouterService(stand_in_router(POOL, C_REF), cfgs, args, predict, recorder.metrics())
        made.append(svc)
        return svc

    yield make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server (Debian's), started here on 127.0.0.1 with its own dir; skipped without one."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run installs it)")
    d = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(d), "--save", "", "--appendonly", "no",
                             "--protected-mode", "yes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.time() + 10
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)
