"""Both rewards on the trained router's predictions: a larger λ never picks a more expensive model."""

import numpy as np
import pytest

from router.rewards import get_reward, decide


@pytest.mark.parametrize("reward", ["linear", "exponential"])
def test_higher_lambda_never_picks_more_expensive(trained, embedded_synthetic, reward):
    _, test, _, Xt, _ = embedded_synthetic
    pred = trained.predict(Xt)
    rows = np.arange(len(Xt))
    grid = get_reward(reward).default_grid
    predicted, true = [], []
    last = None
    for lam in grid:
        choice, _ = decide(pred.quality, pred.cost, lam, reward, trained.c_ref_)
        chosen = pred.cost[rows, choice]
        if last is not None:  # per prompt (both rewards: argmax of log q − λ·c/c_ref is monotone too)
            assert np.all(chosen <= last + 1e-15)
        last = chosen
        predicted.append(chosen.mean())
        true.append(test.cost[rows, choice].mean())
    assert np.all(np.diff(predicted) <= 1e-15)
    assert np.all(np.diff(true) <= 1e-12)
    assert true[0] > true[-1]  # the grid spans a real trade-off
