"""The oracle on a hand-computed table: ties in quality, ties in cost, all-zero rows."""

import numpy as np
import pytest

from router.oracle import NO_MODEL, oracle_choice, oracle_point

# Pool: a (cheap), b (mid), c (expensive).
QUALITY = np.array(
    [
        [1.0, 1.0, 1.0],  # all right: cheapest, a
        [0.0, 1.0, 1.0],  # b and c tie on quality: cheaper b
        [0.0, 0.0, 0.0],  # nobody right: no model, cost 0
        [0.2, 0.7, 0.5],  # graded scores: best is b
        [0.0, 0.0, 0.4],  # only c scores
        [0.0, 0.6, 0.6],  # b and c tie on quality and cost: first listed, b
    ]
)
COST = np.array(
    [
        [1.0, 2.0, 3.0],
        [1.0, 2.0, 3.0],
        [1.0, 2.0, 3.0],
        [1.0, 5.0, 3.0],
        [1.0, 2.0, 3.0],
        [1.0, 4.0, 4.0],
    ]
)


def test_oracle_choice_by_hand():
    assert oracle_choice(QUALITY, COST).tolist() == [0, 1, NO_MODEL, 1, 2, 1]


def test_oracle_point_by_hand():
    quality, cost = oracle_point(QUALITY, COST)
    assert quality == pytest.approx((1.0 + 1.0 + 0.0 + 0.7 + 0.4 + 0.6) / 6)
    assert cost == pytest.approx(1.0 + 2.0 + 0.0 + 5.0 + 3.0 + 4.0)


def test_oracle_all_zero_table_costs_nothing():
    assert oracle_point(np.zeros((4, 2)), np.ones((4, 2))) == (0.0, 0.0)
    assert oracle_choice(np.zeros((4, 2)), np.ones((4, 2))).tolist() == [NO_MODEL] * 4


def test_oracle_beats_every_single_model():
    rng = np.random.default_rng(0)
    quality = (rng.random((200, 4)) < 0.5).astype(float)
    cost = rng.uniform(0.1, 1.0, (200, 4))
    oq, oc = oracle_point(quality, cost)
    assert oq >= quality.mean(axis=0).max()
    # Routing to a right answer never costs more than the most expensive always-right path.
    assert oc <= cost.max(axis=1).sum()


def test_oracle_rejects_bad_shapes():
    with pytest.raises(ValueError, match="quality and cost"):
        oracle_point(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least one model"):
        oracle_choice(np.zeros((3, 0)), np.zeros((3, 0)))
