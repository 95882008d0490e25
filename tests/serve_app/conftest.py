"""Fixtures of the service tests: a stub backend (test double) and a keyword predictor (test double)."""

from __future__ import annotations

import numpy as np
import pytest

from router.prediction import Prediction
from serve_app.testing.stub_backend import Behaviour, StubBackend

POOL = ("small", "medium", "large")
PRICE = {"small": 1e-5, "medium": 1e-4, "large": 1e-3}


def keyword_prediction(prompts: list[str]) -> Prediction:
    """TEST DOUBLE for the Embedder -> Scorer chain: 'chat' prompts suit every model, 'code' prompts
    suit medium and large, anything else only large."""
    q = []
    for p in prompts:
        if "chat" in p:
            q.append([0.85, 0.86, 0.9])
        elif "code" in p:
            q.append([0.2, 0.85, 0.9])
        else:
            q.append([0.1, 0.3, 0.9])
    cost = np.tile([PRICE[m] for m in POOL], (len(prompts), 1))
    return Prediction(quality=np.asarray(q, dtype=np.float64), cost=cost)


class _FixedPool:
    """TEST DOUBLE of a fitted predictor: only the pool and the cost scale (the service's
    predictions come from ``keyword_prediction``)."""

    def __init__(self, models, c_ref):
        self.models, self.c_ref_ = tuple(models), float(c_ref)


def stand_in_router(models=POOL, c_ref: float = sum(PRICE.values()) / 3):
    """A ``router.core.Router`` over a fixed pool, so the service decides with the real ``Router.decide``."""
    from router.core import Router

    return Router(_FixedPool(models, c_ref), encoder_name="hash:64")


@pytest.fixture
def stub_backend():
    stub = StubBackend(Behaviour())
    stub.start_in_thread()
    yield stub
    stub.stop_thread()
