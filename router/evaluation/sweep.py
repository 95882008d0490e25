"""Sweep a router's predictions over a λ grid: per λ, the test set's mean TRUE quality and TOTAL
TRUE cost (USD) of the models the router chooses — RouterBench's (cost, performance) points.

``sweep_choices`` keeps the chosen model of every prompt at every λ: the paired bootstrap
(``router.evaluation.bootstrap``) resamples prompts and re-adds their chosen quality and cost
instead of re-running the decision."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from router.prediction import Prediction
from router.rewards import Reward, decide, get_reward


def _reward_and_grid(reward: str | Reward, grid: Sequence[float] | None) -> tuple[Reward, tuple[float, ...]]:
    rw = reward if isinstance(reward, Reward) else get_reward(reward)
    lams = rw.default_grid if grid is None else tuple(grid)
    if len(lams) == 0:
        raise ValueError("the λ grid is empty")
    return rw, lams


def sweep_choices(
    prediction: Prediction,
    reward: str | Reward = "routerbench",
    grid: Sequence[float] | None = None,
    c_ref: float = 1.0,
) -> tuple[np.ndarray, tuple[float, ...]]:
    """``(choices, lams)``: choices is (L, N), the model index chosen for each prompt at each λ."""
    rw, lams = _reward_and_grid(reward, grid)
    choices = np.empty((len(lams), prediction.quality.shape[0]), dtype=np.int64)
    for i, lam in enumerate(lams):
        choices[i], _ = decide(prediction.quality, prediction.cost, lam, rw, c_ref)
    return choices, lams


def points_from_choices(choices: np.ndarray, true_quality: np.ndarray, true_cost: np.ndarray, lams: Sequence[float]) -> list[tuple[float, float, float]]:
    """``[(total_cost, mean_quality, lam), ...]`` of (L, N) choices on the true quality and cost."""
    q = np.asarray(true_quality, dtype=np.float64)
    c = np.asarray(true_cost, dtype=np.float64)
    rows = np.arange(len(q))
    return [
        (float(c[rows, ch].sum()), float(q[rows, ch].mean()) if len(q) else 0.0, float(lam)) for ch, lam in zip(choices, lams)
    ]


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
    q = np.asarray(true_quality, dtype=np.float64)
    c = np.asarray(true_cost, dtype=np.float64)
    if q.shape != prediction.quality.shape or c.shape != q.shape:
        raise ValueError(
            f"true quality {q.shape}, true cost {c.shape} and prediction {prediction.quality.shape} must have equal shapes"
        )
    choices, lams = sweep_choices(prediction, reward, grid, c_ref)
    return points_from_choices(choices, q, c, lams)
