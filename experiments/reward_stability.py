"""Is the exponential reward more stable across λ than the linear one? (The paper's claim, measured.)

For one prediction on a test set, each reward is swept over the same λ grid and we record:

* ``distinct_points``: how many different (total cost, mean quality) operating points the grid reaches;
* ``max_cost_jump``: the largest change of total cost between neighbouring λ values, as a share of
  the cost range the reward spans (1.0 = one step jumps across the whole range);
* ``mean_switch_rate``: the mean share of prompts whose chosen model changes between neighbouring λ;
* ``aiq`` (paper form) and ``aiq_routerbench`` of the sweep's hull (common c_max over both rewards).

Note (ours, exact): q·exp(−λc/c_ref) has the same argmax as log q − λ·c/c_ref, so the exponential
reward is the linear reward applied to log q̂. It discounts a cheap model's lower quality more
strongly when q̂ is small, but per prompt the chosen cost is still non-increasing in λ, exactly as
with the linear reward.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from router.evaluation.metrics import aiq_paper, aiq_routerbench, ndch
from router.prediction import Prediction
from router.rewards import NORMALISED_GRID, decide, get_reward

DENSE_GRID = (0.0,) + tuple(float(x) for x in np.logspace(-3, 3, 301))


def reward_stability(
    prediction: Prediction,
    true_quality: np.ndarray,
    true_cost: np.ndarray,
    c_ref: float,
    rewards: Sequence[str] = ("linear", "exponential"),
    grid: Sequence[float] = NORMALISED_GRID,
) -> dict[str, dict]:
    q = np.asarray(true_quality, dtype=np.float64)
    c = np.asarray(true_cost, dtype=np.float64)
    rows = np.arange(len(q))
    out: dict[str, dict] = {}
    hulls = {}
    for name in rewards:
        rw = get_reward(name)
        choices = [decide(prediction.quality, prediction.cost, lam, rw, c_ref)[0] for lam in grid]
        pts = np.array([(c[rows, ch].sum(), q[rows, ch].mean()) for ch in choices])
        span = pts[:, 0].max() - pts[:, 0].min()
        jumps = np.abs(np.diff(pts[:, 0]))
        switches = [float(np.mean(a != b)) for a, b in zip(choices[:-1], choices[1:])]
        hulls[name] = ndch(pts)
        out[name] = {
            "grid_size": len(grid),
            "distinct_points": int(len({(round(x, 12), round(y, 12)) for x, y in pts})),
            "max_cost_jump": float(jumps.max() / span) if span > 0 else 0.0,
            "mean_switch_rate": float(np.mean(switches)) if switches else 0.0,
            "cost_range": [float(pts[:, 0].min()), float(pts[:, 0].max())],
            "aiq": aiq_paper(hulls[name]),
            "points": pts.tolist(),
        }
    for name, value in zip(rewards, aiq_routerbench([hulls[n] for n in rewards])):
        out[name]["aiq_routerbench"] = value
    return out
