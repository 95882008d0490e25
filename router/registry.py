"""Router families by name, as used by ``router eval --routers knn,mlp,svm,cross_attention``.

A family expands to one or more fitted predictors, each scored under one or more rewards; every
(predictor, reward) pair is one row of the results (e.g. ``cross_attention`` gives one trained
network and the rows ``cross_attention_linear`` and ``cross_attention_exp``). Builders are
imported lazily so that asking for the baselines never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from router.prediction import Predictor


@dataclass
class RouterEntry:
    predictor: Predictor
    rows: dict[str, str]  # result row name -> reward name
    # Set when the predictor arrives already fitted (e.g. loaded from an artifact).
    fitted: bool = False


@dataclass
class BuildContext:
    """What a family builder may need besides the data."""

    seed: int = 0
    artifact: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


# family name -> "module:function" returning list[RouterEntry]
FAMILIES: dict[str, str] = {
    "knn": "router.baselines.knn:build_family",
    "mlp": "router.baselines.mlp:build_family",
    "svm": "router.baselines.svm:build_family",
    "mf": "router.baselines.mf:build_family",
    "cross_attention": "router.family:build_family",
    # Uncertainty-aware wrappers (router.uncertainty): deep ensemble + shrinkage to the prior.
    "cross_attention_unc": "router.uncertainty:build_cross_attention_family",
    "mf_unc": "router.uncertainty:build_mf_family",
}


# Families that are baselines to beat (the RouterBench routers and matrix factorisation): the
# evaluation compares every row with the best of these (``router.evaluation.bootstrap``).
BASELINE_FAMILIES = frozenset({"knn", "mlp", "svm", "mf"})


def family_builder(name: str) -> Callable[[BuildContext], list[RouterEntry]]:
    if name not in FAMILIES:
        raise ValueError(f"unknown router {name!r}; choose from {', '.join(FAMILIES)}")
    module, func = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), func)


def parse_router_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--routers: give at least one router name")
    for n in names:
        if n not in FAMILIES:
            raise ValueError(f"--routers: unknown router {n!r}; choose from {', '.join(FAMILIES)}")
    return names
