import numpy as np
import pytest

from experiments.reward_stability import reward_stability
from router.rewards import NORMALISED_GRID


def test_stability_summary(trained, embedded_synthetic):
    _, test, _, Xt, _ = embedded_synthetic
    out = reward_stability(trained.predict(Xt), test.quality, test.cost, trained.c_ref_)
    for name in ("linear", "exponential"):
        s = out[name]
        assert s["grid_size"] == len(NORMALISED_GRID) == len(s["points"])
        assert 1 <= s["distinct_points"] <= s["grid_size"]
        assert 0.0 <= s["max_cost_jump"] <= 1.0 and 0.0 <= s["mean_switch_rate"] <= 1.0
        assert 0.0 <= s["aiq"] <= 1.0 and 0.0 <= s["aiq_routerbench"] <= 1.0
        costs = np.array(s["points"])[:, 0]
        assert np.all(np.diff(costs) <= 1e-12)  # λ up, cost down


def test_hand_made_case():
    from router.prediction import Prediction

    # Two prompts, two models; the cheap one is slightly worse: one switch point per prompt.
    q = np.array([[0.9, 0.8], [0.9, 0.2]])
    c = np.array([[1.0, 0.1], [1.0, 0.1]])
    out = reward_stability(Prediction(q, c), q, c, c_ref=1.0, grid=(0.0, 0.5, 10.0))
    lin = out["linear"]
    assert np.allclose(lin["points"], [[2.0, 0.9], [1.1, 0.85], [0.2, 0.5]])
    assert lin["distinct_points"] == 3 and lin["max_cost_jump"] == pytest.approx(0.5)
    assert lin["mean_switch_rate"] == pytest.approx(0.5)
