"""Sweep a router's predictions over a λ grid: per λ, the test set's mean TRUE quality and TOTAL
TRUE cost (USD) of the models the router chooses — RouterBench's (cost, performance) points."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from router.prediction import Prediction
from router.rewards import Reward, decide, get_reward


def sweep(
    prediction: Prediction,
    true_quality: np.ndarray,
    true_cost: np.ndarray,
    reward: str | Reward = "routerbench",
    grid: Sequence[float] | None = None,
    c_ref: float = 1.0,
) -> list[tuple[float, float, float]]:
    """``[(total_cost, mean_quality, lam), ...]`` in grid order. ``grid`` defaults to the reward's
    ``default_grid`` (RouterBench's 32 willingness-to-pay values for ``routerbench``)."""
    rw = reward if isinstance(reward, Reward) else get_reward(reward)
    q = np.asarray(true_quality, dtype=np.float64)
    c = np.asarray(true_cost, dtype=np.float64)
    if q.shape != prediction.quality.shape or c.shape != q.shape:
        raise ValueError(
            f"true quality {q.shape}, true cost {c.shape} and prediction {prediction.quality.shape} must have equal shapes"
        )
    lams = rw.default_grid if grid is None else tuple(grid)
    if len(lams) == 0:
        raise ValueError("the λ grid is empty")
    rows = np.arange(len(q))
    points = []
    for lam in lams:
        choice, _ = decide(prediction.quality, prediction.cost, lam, rw, c_ref)
        points.append((float(c[rows, choice].sum()), float(q[rows, choice].mean()) if len(q) else 0.0, float(lam)))
    return points
