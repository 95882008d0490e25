"""Rewards, the cost scale and per-request decisions on hand-computed cases."""

import numpy as np
import pytest

from router.decision import decide_batch
from router.predictor import Prediction
from router.rewards import check_lambda, cost_scale, decide, get_reward


def test_cost_scale_is_the_mean_cost_per_prompt_over_the_pool():
    assert cost_scale(np.array([[1.0, 3.0], [1.0, 3.0]])) == 2.0
    assert cost_scale(np.zeros((2, 2))) == 1.0


def test_rewards_by_hand():
    q, c = np.array([[0.9, 0.5]]), np.array([[2.0, 1.0]])
    assert np.allclose(get_reward("linear")(q, c, 0.1, c_ref=2.0), [[0.8, 0.45]])
    assert np.allclose(get_reward("routerbench")(q, c, 10.0), [[7.0, 4.0]])
    assert np.allclose(get_reward("exp")(q, c, 1.0, c_ref=2.0), [[0.9 * np.exp(-1.0), 0.5 * np.exp(-0.5)]])
    with pytest.raises(ValueError, match="unknown reward"):
        get_reward("quadratic")


def test_ties_go_to_the_cheaper_model_and_lambda_is_checked():
    choice, _ = decide(np.array([[0.5, 0.5]]), np.array([[2.0, 1.0]]), 0.0, "linear")
    assert choice.tolist() == [1]
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite number >= 0"):
            check_lambda(bad)


def test_decide_batch_takes_one_lambda_per_row_in_input_order():
    pred = Prediction(np.array([[0.9, 0.5]] * 3), np.array([[1.0, 0.1]] * 3))
    decisions = decide_batch(pred, ["big", "small"], [0.0, 10.0, 0.0], "linear")
    assert [d.model for d in decisions] == ["big", "small", "big"]
    assert decisions[1].reward["big"] == pytest.approx(0.9 - 10.0)
    with pytest.raises(ValueError, match="lambda values"):
        decide_batch(pred, ["big", "small"], [0.0, 1.0], "linear")
