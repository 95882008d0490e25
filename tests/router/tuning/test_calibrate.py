"""λ calibration meets a budget (and a quality target) on the synthetic fixture."""

from __future__ import annotations

import numpy as np
import pytest

from router.prediction import Prediction
from router.tuning.calibrate import calibrate, choose, lambda_grid, operating_points


@pytest.fixture(scope="module")
def trained(embedded_synthetic):
    from router.model.config import TrainConfig
    from router.model.estimator import CrossAttentionPredictor

    d = embedded_synthetic
    rows = np.arange(len(d)) < 150  # train on the first half, calibrate on the (unseen) rest
    fit, rest = d.take(np.flatnonzero(rows)), d.take(np.flatnonzero(~rows))
    cfg = TrainConfig(hidden_dim=16, max_epochs=15, batch_size=32, init_from_names=False, num_threads=1)
    predictor = CrossAttentionPredictor(cfg).fit(fit.X, fit.quality, fit.cost, fit.models)
    return predictor, rest


def _predict(predictor):
    return lambda part: predictor.predict(part.X)


def test_budget_is_met_on_calibration_and_close_on_heldout(trained):
    predictor, data = trained
    # Between always-small ($0.01/1000) and always-large ($1/1000): a real trade-off.
    res = calibrate(_predict(predictor), predictor.c_ref_, data, "linear", budget=0.4, seed=0)
    assert res["feasible"]
    assert res["calibration"]["cost_per_1000"] <= 0.4
    # the chosen λ is the best feasible point of the grid on the calibration rows
    cal_rows = np.sort(np.random.default_rng(0).permutation(len(data))[len(data) // 2 :])
    points = operating_points(predictor.predict(data.X[cal_rows]), data.take(cal_rows), "linear", predictor.c_ref_, lambda_grid("linear"))
    assert res["calibration"]["quality"] == pytest.approx(max(p["quality"] for p in points if p["cost_per_1000"] <= 0.4))
    assert res["heldout"]["cost_per_1000"] <= 0.4 * 1.5  # held out: same regime, not exactly the budget
    # a looser budget buys at least as much calibration quality
    loose = calibrate(_predict(predictor), predictor.c_ref_, data, "linear", budget=2.0, seed=0)
    assert loose["calibration"]["quality"] >= res["calibration"]["quality"]


def test_quality_target_and_infeasible_requests(trained):
    predictor, data = trained
    res = calibrate(_predict(predictor), predictor.c_ref_, data, "exponential", quality_target=0.6, seed=0)
    assert res["feasible"] and res["calibration"]["quality"] >= 0.6
    none = calibrate(_predict(predictor), predictor.c_ref_, data, "linear", budget=1e-9, seed=0)
    assert not none["feasible"] and "closest" in none
    with pytest.raises(ValueError, match="budget"):
        calibrate(_predict(predictor), predictor.c_ref_, data, "linear", budget=-1)


def test_choose_picks_best_feasible_point():
    points = [{"lambda": 0.0, "quality": 0.9, "cost_per_1000": 5.0}, {"lambda": 1.0, "quality": 0.8, "cost_per_1000": 2.0},
              {"lambda": 2.0, "quality": 0.85, "cost_per_1000": 2.5}, {"lambda": 9.0, "quality": 0.5, "cost_per_1000": 0.1}]  # fmt: skip
    assert choose(points, budget=3.0)["lambda"] == 2.0  # not monotone: the grid finds the better one
    assert choose(points, quality_target=0.8)["lambda"] == 1.0
    assert choose(points, budget=0.01) is None
    with pytest.raises(ValueError):
        choose(points)
    grid = lambda_grid("linear")
    assert grid[0] == 0.0 and len(grid) > 200 and grid == sorted(grid)
    pred = Prediction(np.array([[0.2, 0.9]]), np.array([[1.0, 3.0]]))
    from router.tuning.data import Embedded

    data = Embedded(np.zeros((1, 2), np.float32), np.array([[0.0, 1.0]]), np.array([[1.0, 3.0]]), ("a", "b"), ["p"])
    assert operating_points(pred, data, "linear", 1.0, [0.0])[0] == {"lambda": 0.0, "quality": 1.0, "cost_per_1000": 3000.0}
