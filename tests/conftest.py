"""Shared fixtures: small data, a model-free encoder, temporary caches and one Ray session.

Ray is started at most once per test session (lazily, by the ``ray_session`` fixture) with small
resources, and shut down at the end (a second Ray per test module costs seconds each on 2 CPUs).
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Keep the test Ray on 127.0.0.1 (see the Makefile).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture
def synthetic_table():
    from router.data.synthetic import make_synthetic_table

    return make_synthetic_table(n=300, seed=0)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty embedding cache, also set as the default for code that does not take one."""
    path = tmp_path / "emb-cache"
    monkeypatch.setenv("ROUTER_CACHE_DIR", str(path))
    return path


@pytest.fixture
def hashing_encoder(cache_dir):
    """A cached, model-free encoder: fast and deterministic."""
    from router.embeddings.cache import CachedEncoder
    from router.embeddings.hashing import HashingEncoder

    return CachedEncoder(HashingEncoder(64), cache_dir=cache_dir)


@pytest.fixture(scope="module")
def stub():
    """The stand-in OpenAI-compatible backend (a test double) in a thread, one per test module."""
    from serve_app.testing.stub_backend import StubBackend

    s = StubBackend()
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (2 CPUs, no dashboard, small object store)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=256 * 1024**2,
            ignore_reinit_error=True,
        )
    yield ray
    try:
        from ray import serve

        serve.shutdown()
    except Exception:
        pass
    ray.shutdown()
