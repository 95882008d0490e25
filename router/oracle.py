"""The oracle router: per prompt, the cheapest of the best-scoring models (RouterBench's reference).

Where no model scores above 0 on a prompt the oracle routes nowhere: quality 0 and cost 0, since
paying for an answer that is wrong anyway buys nothing. Ties in quality are exact (scores are
mostly 0/1); ties in cost go to the model listed first in the pool.
"""

from __future__ import annotations

import numpy as np

NO_MODEL = -1


def _check(quality: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if quality.ndim != 2 or quality.shape != cost.shape:
        raise ValueError(f"quality and cost must both be (N, M) arrays, got {quality.shape} and {cost.shape}")
    if quality.shape[1] == 0:
        raise ValueError("the oracle needs at least one model")
    return quality, cost


def oracle_choice(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(N,) index of the oracle's model per prompt, or ``NO_MODEL`` (-1) where every model scores 0."""
    quality, cost = _check(quality, cost)
    best = quality.max(axis=1, keepdims=True)
    # Cost of each best-scoring model, +inf elsewhere; argmin takes the first of equal costs.
    masked = np.where(quality == best, cost, np.inf)
    choice = masked.argmin(axis=1)
    return np.where(best[:, 0] > 0, choice, NO_MODEL)


def oracle_point(quality: np.ndarray, cost: np.ndarray) -> tuple[float, float]:
    """(mean quality, total cost in USD) of the oracle over all prompts."""
    quality, cost = _check(quality, cost)
    if len(quality) == 0:
        return 0.0, 0.0
    choice = oracle_choice(quality, cost)
    routed = choice != NO_MODEL
    rows = np.flatnonzero(routed)
    picked_quality = np.zeros(len(quality))
    picked_cost = np.zeros(len(quality))
    picked_quality[rows] = quality[rows, choice[rows]]
    picked_cost[rows] = cost[rows, choice[rows]]
    return float(picked_quality.mean()), float(picked_cost.sum())
