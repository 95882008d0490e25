"""Rewards, the cost scale and per-request decisions on hand-computed cases."""

import numpy as np
import pytest

from router.decision import decide_batch
from router.prediction import Prediction
from router.rewards import check_lambda, check_reward, cost_scale, decide, get_reward, parse_lambdas


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


def test_one_lambda_validator_names_its_source():
    assert check_lambda("0.25", "x-router-lambda") == 0.25 and check_lambda(0) == 0.0 and check_lambda(" 3 ") == 3.0
    for bad, words in [(True, "must be a number"), ("abc", "must be a number"), ("1_0", "must be a number"),
                       ("inf", "must be a finite number >= 0"), ("-1", "must be a finite number >= 0"), (None, "must be a number")]:
        with pytest.raises(ValueError, match=f"^--flag: lambda {words}"):
            check_lambda(bad, "--flag")
    assert check_reward("exp") == "exponential"
    with pytest.raises(ValueError, match="^reward: unknown reward"):
        check_reward("quadratic")


def test_one_lambda_list_parser():
    assert parse_lambdas("0, 1e-3,2", "--grid") == [0.0, 0.001, 2.0]
    assert parse_lambdas("logspace:-2:0:3", "--grid") == pytest.approx([0.01, 0.1, 1.0])
    for bad in ["", "logspace:1:2", "a,b", "nan", "-1"]:
        with pytest.raises(ValueError, match="^--grid"):
            parse_lambdas(bad, "--grid")
