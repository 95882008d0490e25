"""Calibration: ECE and reliability bins, temperature/isotonic calibrators, the predictor wrapper."""

import numpy as np
import pytest

from router.calibration import CalibratedPredictor, Calibrator, calibrated_entries, calibration_report, parse_methods
from router.prediction import Prediction, Predictor
from router.registry import RouterEntry


def test_ece_by_hand():
    pred = np.array([[0.05, 0.15], [0.95, 0.96]])
    obs = np.array([[0.0, 1.0], [1.0, 0.0]])
    rep = calibration_report(pred, obs, ["a", "b"])
    # bins: [0, .1): .05 vs 0; [.1, .2): .15 vs 1; [.9, 1]: mean .955 vs .5.
    assert rep["ece"] == pytest.approx((0.05 + 0.85 + 2 * 0.455) / 4)
    assert rep["brier"] == pytest.approx(np.mean((pred - obs) ** 2))
    assert [b[2] for b in rep["bins"]] == [1, 1, 2]
    assert rep["per_model"]["a"] == pytest.approx((0.05 + 0.05) / 2)
    with pytest.raises(ValueError):
        calibration_report(pred, obs[:1])


def overconfident(n, seed):
    """Predictions that say .95/.05 where the truth is .7/.3."""
    rng = np.random.default_rng(seed)
    high = rng.random((n, 2)) < 0.5
    pred = np.where(high, 0.95, 0.05)
    obs = (rng.random((n, 2)) < np.where(high, 0.7, 0.3)).astype(float)
    return pred, obs


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_calibrators_fix_overconfidence_on_new_rows(method):
    p_fit, o_fit = overconfident(2000, 0)
    p_new, o_new = overconfident(2000, 1)
    cal = Calibrator(method).fit(p_fit, o_fit)
    if method == "temperature":
        assert cal.temperature_ > 1  # softens
    fixed = cal.transform(p_new)
    assert calibration_report(fixed, o_new)["ece"] < 0.5 * calibration_report(p_new, o_new)["ece"]
    assert (np.diff(cal.transform(np.linspace(0, 1, 50))) >= -1e-12).all()  # monotone
    with pytest.raises(ValueError, match="unknown calibration method"):
        Calibrator("platt")


class Spy(Predictor):
    """Predicts .99 for every pair while the truth is ~.5, and records what it was fitted on."""

    def fit(self, X, quality, cost, models, tokens=None):
        self.fit_rows, self.tokens_rows, self.models = len(X), None if tokens is None else len(tokens), tuple(models)
        return self

    def predict(self, X, tokens=None):
        n = len(X)
        return Prediction(quality=np.full((n, 2), 0.99), cost=np.ones((n, 2)))


def test_wrapper_carves_validation_from_training_only():
    rng = np.random.default_rng(0)
    X, q, c = rng.normal(size=(100, 3)), (rng.random((100, 2)) < 0.5).astype(float), np.ones((100, 2))
    tokens = np.zeros((100, 4, 3))
    wrapped = CalibratedPredictor(Spy(), "isotonic", val_fraction=0.2, seed=1).fit(X, q, c, ["a", "b"], tokens=tokens)
    assert (wrapped.base.fit_rows, wrapped.base.tokens_rows) == (80, 80)
    assert wrapped.models == ("a", "b") and not wrapped.needs_tokens
    out = wrapped.predict(X[:5], tokens=tokens[:5])
    assert out.quality == pytest.approx(np.full((5, 2), q.mean(), dtype=float), abs=0.15)
    with pytest.raises(ValueError, match="val_fraction"):
        CalibratedPredictor(Spy(), val_fraction=0.0)


def test_entries_are_renamed_and_prefitted_ones_skipped():
    entries = [RouterEntry(Spy(), {"a": "linear", "b": "exponential"}), RouterEntry(Spy(), {"c": "linear"}, fitted=True)]
    out = calibrated_entries(entries, "temperature", seed=3)
    assert [list(e.rows) for e in out] == [["a+temperature", "b+temperature"]]
    assert out[0].predictor.seed == 3 and list(out[0].rows.values()) == ["linear", "exponential"]
    assert parse_methods(None) == [] and parse_methods("isotonic, temperature") == ["isotonic", "temperature"]
    with pytest.raises(ValueError, match="--calibrate"):
        parse_methods("nope")
