"""The λ sweep: true quality and total true cost of the chosen models, per λ."""

import numpy as np
import pytest

from router.evaluation.sweep import sweep
from router.prediction import Prediction
from router.rewards import ROUTERBENCH_WTP

# Two prompts, a cheap model (right on prompt 0 only) and an expensive one (right on both).
TRUE_Q = np.array([[1.0, 1.0], [0.0, 1.0]])
TRUE_C = np.array([[1.0, 10.0], [1.0, 10.0]])


def test_sweep_by_hand():
    # The router knows the truth; predicted cost is the price.
    pred = Prediction(quality=TRUE_Q.copy(), cost=TRUE_C.copy())
    pts = sweep(pred, TRUE_Q, TRUE_C, "routerbench", grid=[0.0, 5.0, 20.0])
    # λ=0: cheapest everywhere -> cost 2, quality .5.  λ=5: prompt 0 cheap (5-1 > 5-10), prompt 1
    # cheap (0-1 > 5-10) -> same.  λ=20: prompt 0 cheap (19 > 10), prompt 1 big (10 > -1).
    assert pts == [(2.0, 0.5, 0.0), (2.0, 0.5, 5.0), (11.0, 1.0, 20.0)]


def test_default_grid_is_the_rewards():
    pred = Prediction(quality=TRUE_Q.copy(), cost=TRUE_C.copy())
    pts = sweep(pred, TRUE_Q, TRUE_C, "routerbench")
    assert [p[2] for p in pts] == list(ROUTERBENCH_WTP)
    assert len(pts) == 32


def test_routerbench_sweep_is_monotone_in_cost_and_quality_on_a_toy():
    rng = np.random.default_rng(0)
    n, m = 200, 4
    price = np.array([1e-4, 1e-3, 1e-2, 1e-1])
    true_q = (rng.random((n, m)) < np.array([0.3, 0.5, 0.7, 0.9])).astype(float)
    true_c = np.broadcast_to(price, (n, m)) * rng.uniform(0.8, 1.2, (n, m))
    # A noisy but informative quality estimate, the mean price as the cost estimate.
    q_hat = np.clip(0.6 * true_q + 0.4 * rng.random((n, m)), 0, 1)
    pred = Prediction(quality=q_hat, cost=np.broadcast_to(price, (n, m)).copy())
    pts = np.array(sweep(pred, true_q, true_c, "routerbench"))
    # Larger willingness to pay never buys a cheaper model for any prompt (predicted cost is fixed
    # per model, and prices here are ordered beyond their noise), so the total true cost is
    # non-decreasing; the top of the grid buys more true quality than the bottom.
    assert np.all(np.diff(pts[:, 0]) >= -1e-12)
    assert pts[0, 0] == pytest.approx(true_c[:, 0].sum())  # λ≈0: the cheapest model for all
    assert pts[-1, 1] > pts[0, 1]


def test_sweep_checks_shapes_and_grid():
    pred = Prediction(quality=TRUE_Q.copy(), cost=TRUE_C.copy())
    with pytest.raises(ValueError, match="shapes"):
        sweep(pred, TRUE_Q[:1], TRUE_C[:1])
    with pytest.raises(ValueError, match="empty"):
        sweep(pred, TRUE_Q, TRUE_C, grid=[])
    with pytest.raises(ValueError, match="lambda"):
        sweep(pred, TRUE_Q, TRUE_C, grid=[-1.0])
