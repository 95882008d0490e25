import numpy as np
import pytest
import torch

from router.model.extend import add_model
from router.model.config import TrainConfig
from router.model.estimator import CrossAttentionPredictor


def test_add_a_held_out_model(embedded_synthetic, fast):
    train, test, X, Xt, _ = embedded_synthetic
    rest = ("small", "medium")
    sub = train.with_models(rest)
    base = CrossAttentionPredictor(TrainConfig(**{**fast, "lr": 1e-2, "max_epochs": 60})).fit(X, sub.quality, sub.cost, rest)
    j = train.models.index("large")
    grown = add_model(base, "large", X[:100], train.quality[:100, j], train.cost[:100, j], seed=0)
    assert grown.models == rest + ("large",) and base.models == rest
    pred = grown.predict(Xt)
    # The frozen part is untouched: every trained weight and the old embeddings are identical. The
    # old models' predictions still move a little: the prompt attends over the whole pool, new model included.
    for key, value in base.network_.state_dict().items():
        new = grown.network_.state_dict()[key]
        assert torch.equal(new[:2], value) if key == "model_embedding" else torch.equal(new, value)
    old = base.predict(Xt)
    assert np.abs(pred.quality[:, :2] - old.quality).max() < 0.15
    # The new model's cost lands on its price (1e-3 USD) and its quality reflects its skills: far
    # better than the small model at math (0.9 vs 0.1 in the synthetic data).
    assert 0.5e-3 < pred.cost[:, 2].mean() < 2e-3
    math = test.eval_names == "math"
    assert pred.quality[math, 2].mean() > pred.quality[math, 0].mean() + 0.2
    assert grown.c_ref_ == pytest.approx(np.mean(list(grown.prices_.values())))


def test_add_model_rejects_bad_input(trained, embedded_synthetic):
    _, _, X, _, _ = embedded_synthetic
    with pytest.raises(ValueError, match="already in the pool"):
        add_model(trained, "small", X[:10], np.ones(10), np.ones(10))
    with pytest.raises(ValueError, match="at least 5"):
        add_model(trained, "new", X[:3], np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="quality must be"):
        add_model(trained, "new", X[:10], np.full(10, 2.0), np.ones(10))


def test_add_model_grows_the_default_router_through_its_network(embedded_synthetic, fast):
    from router.model.gated import GatedPredictor

    train, test, X, Xt, _ = embedded_synthetic
    rest = ("small", "medium")
    sub = train.with_models(rest)
    base = GatedPredictor(TrainConfig(**{**fast, "fallback": "gate_blend", "fallback_domain_folds": 1})).fit(X, sub.quality, sub.cost, rest)
    j = train.models.index("large")
    grown = add_model(base, "large", X[:100], train.quality[:100, j], train.cost[:100, j], seed=0)
    assert isinstance(grown, GatedPredictor) and grown.models == rest + ("large",) and base.models == rest
    assert grown.params_ == base.params_  # the chosen knobs stay
    # The new column of the neighbour index is the grown network's prediction for the stored prompts;
    # its prior is the probe set's mean quality and cost.
    np.testing.assert_allclose(grown.neighbours_.quality[:, :2], base.neighbours_.quality)
    np.testing.assert_allclose(grown.neighbours_.quality[:, 2], grown.network_.predict(X).quality[:, 2])
    assert grown.prior_[2] == pytest.approx(train.quality[:100, j].mean()) and grown.prior_cost_[2] == pytest.approx(train.cost[:100, j].mean())
    pred = grown.predict(Xt)
    assert pred.quality.shape == (len(Xt), 3) and pred.uncertainty.shape == (len(Xt), 3)
    math = test.eval_names == "math"
    assert pred.quality[math, 2].mean() > pred.quality[math, 0].mean()  # the large model's math skill carried
