"""Performance-profile model embeddings (``model_repr`` profile/both), placing a new model with no
gradient step (``place_model``), and the decision-aware losses (``loss`` listwise/pairwise)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from router.model.artifact import load_artifact, save_artifact
from router.model.config import TrainConfig
from router.model.estimator import CrossAttentionPredictor
from router.model.extend import add_model, place_model
from router.model.profile import ALPHA, Profiler


def test_profiles_are_per_cluster_means_shrunk_toward_the_model_mean():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]], dtype=np.float32)
    q = np.array([[1.0], [1.0], [0.0], [0.0]])
    c = np.full((4, 1), 1e-3)
    prof = Profiler.fit(X, c, clusters=2, seed=0, eps=1e-9)
    out = prof.profiles(X, q, c)
    assert out.shape == (1, 4)
    first = prof.assign(X[:1])[0]
    # two rows at quality 1 in that cluster, overall mean 0.5: (2 + α·0.5) / (2 + α)
    assert out[0, first] == pytest.approx((2 + ALPHA * 0.5) / (2 + ALPHA))
    assert out[0, 1 - first] == pytest.approx((0 + ALPHA * 0.5) / (2 + ALPHA))


@pytest.mark.parametrize("repr_", ["profile", "both"])
def test_profile_router_trains_saves_and_loads(embedded_synthetic, fast, tmp_path, repr_):
    train, _, X, Xt, enc = embedded_synthetic
    pred = CrossAttentionPredictor(TrainConfig(**fast, model_repr=repr_, profile_clusters=6)).fit(X, train.quality, train.cost, train.models)
    net = pred.network_
    assert net.model_profile.shape == (3, 12) and net.profile_centroids.shape == (6, X.shape[1])
    art = load_artifact(save_artifact(pred, tmp_path / repr_, enc.name, enc.dim))
    assert art.predictor.network_.model_repr == repr_
    np.testing.assert_allclose(art.predictor.predict(Xt).quality, pred.predict(Xt).quality, rtol=1e-5)


def test_place_a_held_out_model_without_a_gradient_step(embedded_synthetic, fast):
    train, test, X, Xt, _ = embedded_synthetic
    rest = ("small", "medium")
    sub = train.with_models(rest)
    base = CrossAttentionPredictor(TrainConfig(**{**fast, "lr": 1e-2, "max_epochs": 60}, model_repr="profile", profile_clusters=6))
    base.fit(X, sub.quality, sub.cost, rest)
    j = train.models.index("large")
    before = {k: v.clone() for k, v in base.network_.state_dict().items()}
    grown = place_model(base, "large", X[:100], train.quality[:100, j], train.cost[:100, j])
    assert grown.models == rest + ("large",) and base.models == rest
    for key, value in before.items():  # nothing trained moved; the pool's rows are as they were
        new = grown.network_.state_dict()[key]
        assert torch.equal(new[:2], value) if key in ("model_embedding", "model_profile") else torch.equal(new, value)
    pred = grown.predict(Xt)
    # its cost lands on its price (1e-3 USD in the synthetic data)
    assert 0.5e-3 < pred.cost[:, 2].mean() < 2e-3
    assert np.isfinite(pred.quality).all()


def test_each_way_of_adding_a_model_refuses_the_other_representation(trained, embedded_synthetic, fast):
    train, _, X, _, _ = embedded_synthetic
    with pytest.raises(ValueError, match="use add_model"):
        place_model(trained, "new", X[:10], np.ones(10), np.ones(10))
    prof = CrossAttentionPredictor(TrainConfig(**dict(fast, max_epochs=2), model_repr="profile", profile_clusters=4))
    prof.fit(X, train.quality, train.cost, train.models)
    with pytest.raises(ValueError, match="use place_model"):
        add_model(prof, "new", X[:10], np.ones(10), np.ones(10))
    with pytest.raises(ValueError, match="already in the pool"):
        place_model(prof, "small", X[:10], np.ones(10), np.ones(10))


@pytest.mark.parametrize("loss", ["listwise", "pairwise"])
def test_decision_aware_losses_train_and_are_deterministic(embedded_synthetic, fast, loss):
    train, _, X, Xt, _ = embedded_synthetic
    cfg = TrainConfig(**dict(fast, max_epochs=4), loss=loss)
    a = CrossAttentionPredictor(cfg).fit(X, train.quality, train.cost, train.models)
    b = CrossAttentionPredictor(cfg).fit(X, train.quality, train.cost, train.models)
    np.testing.assert_array_equal(a.predict(Xt).quality, b.predict(Xt).quality)
    losses = [h["train_loss"] for h in a.history_]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    # the extra term is part of the objective: the pointwise router's loss differs
    c = CrossAttentionPredictor(TrainConfig(**dict(fast, max_epochs=4))).fit(X, train.quality, train.cost, train.models)
    assert c.history_[0]["train_loss"] != pytest.approx(losses[0])


def test_listwise_loss_is_zero_gradient_free_at_the_truth():
    """The listwise term is a cross-entropy: minimal where the predicted rewards order the models as observed."""
    from router.model.training import DecisionTarget, _Batches

    q = np.array([[0.9, 0.1]], dtype=np.float64)
    cost = np.array([[1e-3, 1e-5]])
    cfg = TrainConfig(loss="listwise", decision_temperature=0.1, cost_loss_weight=0.0)
    b = _Batches(None, cfg, np.zeros((1, 2), np.float32), q, np.zeros((1, 2), np.float32), None, None,
                 DecisionTarget(cost, 1e-4, np.log(cost[0]), np.ones(2), 1e-12))  # fmt: skip
    rows = torch.tensor([0])
    z_true = torch.zeros(1, 2)  # log cost at mu: the true cost
    logit = torch.logit(torch.tensor(q, dtype=torch.float32))
    good = float(b._listwise(rows, logit, z_true, training=False))
    bad = float(b._listwise(rows, logit.flip(1), z_true, training=False))
    assert good < bad
