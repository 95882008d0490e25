"""Cost-aware LLM routing: predict every pool model's quality and cost per prompt, pick by reward.

The public surface (everything else is reachable but may change)::

    from router import Router, TrainConfig, load_table, evaluate

    router = Router.load("artifacts/router")          # an artifact written by `router train`
    router.route("What is 2+2?", lam=1.0)             # -> Decision
    router.predict(["a prompt", "another"])           # -> Prediction (quality, cost per model)
    Router.train(load_table("dcrouter"), TrainConfig()).save("artifacts/mine")

Names are imported on first use, so ``import router`` stays light (no torch, no Ray).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Router": "router.core",
    "Decision": "router.decision",
    "Prediction": "router.prediction",
    "TrainConfig": "router.model.config",
    "RoutingTable": "router.data.table",
    "load_table": "router.data.io",
    "evaluate": "router.evaluation.runner",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'router' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from router.core import Router
    from router.data.io import load_table
    from router.data.table import RoutingTable
    from router.decision import Decision
    from router.evaluation.runner import evaluate
    from router.model.config import TrainConfig
    from router.prediction import Prediction
