"""One routing decision per prompt: the chosen model and, for every model in the pool, the
predicted quality, predicted cost (USD), reward and (for an ensemble router) uncertainty. Shared by the service, batch routing and
evaluation so that a λ means the same thing everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from router.prediction import Prediction
from router.rewards import Reward, decide, get_reward


@dataclass(frozen=True)
class Decision:
    model: str
    lam: float
    reward_name: str
    quality: dict[str, float]
    cost: dict[str, float]
    reward: dict[str, float]
    # Per model: the std of the ensemble members' predicted quality (None without an ensemble).
    uncertainty: dict[str, float] | None = None


def decide_batch(
    prediction: Prediction,
    models: Sequence[str],
    lam: float | Sequence[float],
    reward: str | Reward = "linear",
    c_ref: float = 1.0,
) -> list[Decision]:
    """Decisions for every row of ``prediction``. ``lam`` is one value or one per row (λ is per request)."""
    rw = reward if isinstance(reward, Reward) else get_reward(reward)
    n = prediction.quality.shape[0]
    lams = np.full(n, float(lam)) if np.ndim(lam) == 0 else np.asarray(lam, dtype=np.float64)
    if lams.shape != (n,):
        raise ValueError(f"got {lams.shape[0]} lambda values for {n} prompts")
    unc = prediction.uncertainty
    out: list[tuple[int, Decision]] = []
    # Group rows by λ so a batch with one λ is one vectorised call.
    for value in np.unique(lams):
        rows = np.flatnonzero(lams == value)
        choice, rewards = decide(prediction.quality[rows], prediction.cost[rows], value, rw, c_ref)
        for r, j, rew in zip(rows, choice, rewards):
            out.append(
                (
                    r,
                    Decision(
                        model=models[j],
                        lam=float(value),
                        reward_name=rw.name,
                        quality=dict(zip(models, map(float, prediction.quality[r]))),
                        cost=dict(zip(models, map(float, prediction.cost[r]))),
                        reward=dict(zip(models, map(float, rew))),
                        uncertainty=None if unc is None else dict(zip(models, map(float, unc[r]))),
                    ),
                )
            )
    out.sort(key=lambda pair: pair[0])
    return [d for _, d in out]
