"""The uncertainty wrapper: ensemble mean/std, the shrinkage rule, training-side selection."""

import numpy as np
import pytest

from router.baselines.mf import MFRouter
from router.baselines.prior import PriorPredictor
from router.data.splits import domains
from router.evaluation.sweep import sweep
from router.uncertainty import UncertaintyConfig, UncertaintyRouter, adjust
from router.registry import BuildContext, family_builder
from tests.router.model.conftest import embedded_synthetic, fast, trained  # noqa: F401


def test_adjust_rules():
    mean = np.array([[0.9, 0.2], [0.5, 0.5]])
    std = np.array([[0.0, 0.1], [0.2, 0.0]])
    prior = np.array([0.4, 0.6])
    assert np.array_equal(adjust(mean, std, prior, "shrink", float("inf")), mean)
    assert np.array_equal(adjust(mean, std, prior, "shrink", 0.0), np.tile(prior, (2, 1)))
    # τ = 0.1: w = σ²/(σ² + .01): 0 where σ = 0, 1/2 where σ = .1, .8 where σ = .2.
    np.testing.assert_allclose(adjust(mean, std, prior, "shrink", 0.1), [[0.9, 0.4], [0.5 * 0.2 + 0.4 * 0.8, 0.5]])
    np.testing.assert_allclose(adjust(mean, std, prior, "risk", 2.0), [[0.9, 0.0], [0.1, 0.5]])


def mf_factory(seed):
    return MFRouter({"seed": seed, "max_epochs": 8, "dim": 8})


def test_ensemble_selection_on_training_folds(embedded_synthetic):
    train, test, X, Xt, _ = embedded_synthetic
    router = UncertaintyRouter(mf_factory, UncertaintyConfig(members=3, domain_folds=2), seed=0)
    router.fit(X, train.quality, train.cost, train.models, domains=domains(train.eval_names))
    sel = router.selection_
    assert sel["folds"][0] == "random" and len(sel["folds"]) == 3 and all(f.startswith("domain ") for f in sel["folds"][1:])
    assert np.array(sel["val_aiq"]).shape == (3, len(router.grid))
    assert sel["chosen"] == router.grid[int(np.argmax(sel["mean_val_aiq"]))]
    mean, std = router.predict_uncertainty(Xt)
    assert mean.quality.shape == std.shape == test.quality.shape and (std > 0).any()
    # Members differ by seed only: member k is factory(k) fitted on all training rows.
    alone = mf_factory(1).fit(X, train.quality, train.cost, train.models).predict(Xt)
    np.testing.assert_allclose(router.members_[1].predict(Xt).quality, alone.quality)
    assert router.models == tuple(train.models)


def test_full_shrinkage_is_the_deployable_no_router(embedded_synthetic):
    train, test, X, Xt, _ = embedded_synthetic
    router = UncertaintyRouter(mf_factory, {"members": 2, "grid": [0.0]}, seed=0).fit(X, train.quality, train.cost, train.models)
    assert router.value_ == 0.0
    prior = PriorPredictor().fit(X, train.quality, train.cost, train.models).predict(Xt)
    # Same quality (the training means); costs are the members' mean training cost = the prior's.
    got = router.predict(Xt)
    np.testing.assert_allclose(got.quality, prior.quality)
    np.testing.assert_allclose(got.cost, prior.cost)
    assert sweep(got, test.quality, test.cost, "linear") == sweep(prior, test.quality, test.cost, "linear")
    with pytest.raises(ValueError, match="domains"):
        router.fit(X, train.quality, train.cost, train.models, domains=["a"])


def test_registry_families():
    (entry,) = family_builder("mf_unc")(BuildContext(seed=2, options={"uncertainty": {"members": 2}}))
    assert entry.rows == {"mf_unc": "routerbench"} and entry.predictor.config.reward == "routerbench"
    assert entry.predictor.seed == 2 and entry.predictor.factory(7).config.seed == 7
    (ca,) = family_builder("cross_attention_unc")(BuildContext(seed=0))
    assert ca.rows == {"cross_attention_unc_linear": "linear"} and ca.predictor.config.members == 5


def test_full_shrinkage_ignores_a_per_prompt_cost_estimate(embedded_synthetic):
    """With members whose cost varies per prompt, τ = 0 still sends every prompt to one model."""
    from router.prediction import Prediction

    train, test, X, Xt, _ = embedded_synthetic

    class Varying(MFRouter):
        def predict(self, X):
            p = super().predict(X)
            return Prediction(quality=p.quality, cost=p.cost * (1 + np.abs(np.asarray(X)[:, :1])))

    router = UncertaintyRouter(lambda s: Varying({"seed": s, "max_epochs": 2, "dim": 4}), {"members": 2, "grid": [0.0]})
    got = router.fit(X, train.quality, train.cost, train.models).predict(Xt)
    np.testing.assert_allclose(got.cost, np.tile(train.cost.mean(axis=0), (len(Xt), 1)))
