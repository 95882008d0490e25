"""The distance gate and the KNN blend as arithmetic (``router.gate``): the ends of the gate are
exact, the neighbour distance grows away from the training prompts, the choice keeps the network
on ties."""

from __future__ import annotations

import numpy as np
import pytest

from router.gate import ALWAYS, NEVER, FoldData, NeighbourIndex, absolute, choose, combine, gate_grid, gate_weight


def test_gate_weight_ends_are_exact_and_it_grows_with_distance():
    d = np.array([0.0, 0.1, 0.2, 0.5])
    assert np.array_equal(gate_weight(d, NEVER, 1.0), np.zeros(4))
    assert np.array_equal(gate_weight(d, ALWAYS, 1.0), np.ones(4))
    w = gate_weight(d, 0.2, 0.05)
    assert np.all(np.diff(w) > 0) and w[2] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="scale"):
        gate_weight(d, 0.2, 0.0)


def test_combine_at_the_ends():
    rng = np.random.default_rng(0)
    q, c, qk = rng.random((5, 3)), rng.random((5, 3)), rng.random((5, 3))
    prior, prior_cost = np.array([0.3, 0.5, 0.7]), np.array([1.0, 2.0, 3.0])
    d = rng.random(5)
    # w = 0, α = 1: the predictor as is; α = 0: the neighbours' quality, the predictor's cost.
    got_q, got_c, w = combine(q, c, qk, d, prior, prior_cost, 1.0, NEVER, 1.0)
    assert np.array_equal(got_q, q) and np.array_equal(got_c, c) and not w.any()
    got_q, got_c, _ = combine(q, c, qk, d, prior, prior_cost, 0.0, NEVER, 1.0)
    assert np.array_equal(got_q, qk) and np.array_equal(got_c, c)
    # w = 1: every prompt gets exactly the priors (the deployable no-router).
    got_q, got_c, w = combine(q, c, qk, d, prior, prior_cost, 0.5, ALWAYS, 1.0)
    assert np.array_equal(got_q, np.tile(prior, (5, 1))) and np.array_equal(got_c, np.tile(prior_cost, (5, 1))) and w.all()


def test_neighbour_distance_is_larger_for_an_ood_cluster():
    rng = np.random.default_rng(0)
    centre = rng.normal(size=16)
    train = centre + 0.3 * rng.normal(size=(200, 16))
    near = centre + 0.3 * rng.normal(size=(20, 16))
    far = -centre + 0.3 * rng.normal(size=(20, 16))  # the opposite direction: cosine distance near 2
    index = NeighbourIndex(train, rng.random((200, 2)), k=10, blend_k=40)
    d_near, q_near = index.query(near)
    d_far, _ = index.query(far)
    assert d_far.min() > d_near.max() and q_near.shape == (20, 2)
    ref = index.reference()
    assert ref.shape == (200,) and (ref > 0).all()  # the prompt itself is left out
    d0, s = absolute(ref, 0.9, 0.3)
    assert d0 == pytest.approx(np.quantile(ref, 0.9)) and s == pytest.approx(0.3 * ref.std())
    assert gate_weight(d_far, d0, s).min() > gate_weight(d_near, d0, s).max()
    with pytest.raises(ValueError, match="neighbour index"):
        NeighbourIndex(train[:1], np.zeros((1, 2)))


def _fold(label, q_net, prior, quality, rng):
    n, m = quality.shape
    return FoldData(label, q_net, np.ones((n, m)), q_net, rng.random(n), rng.random(50), prior, np.ones(m), quality, np.ones((n, m)), 1.0)


def test_choose_keeps_the_network_on_ties_and_falls_back_when_it_is_wrong():
    rng = np.random.default_rng(0)
    quality = (rng.random((60, 2)) < 0.5).astype(float)
    right = _fold("random", quality.copy(), np.array([0.5, 0.5]), quality, rng)
    sel = choose([right], "gate_blend")
    assert sel["alpha"] == 1.0 and sel["quantile"] == NEVER  # q̂_knn = q̂ here: every α ties; the network stays
    assert np.shape(sel["gate_val_aiq"]) == (1, len(gate_grid("gate_blend")))
    # A held-out domain where the network is exactly wrong and model 0 is always right: fall back.
    truth = np.tile([1.0, 0.0], (60, 1))
    wrong = _fold("domain x", 1.0 - truth, np.array([0.9, 0.1]), truth, rng)
    sel = choose([_fold("random", 1.0 - truth, np.array([0.9, 0.1]), truth, rng), wrong], "gate")
    assert sel["alpha"] == 1.0 and sel["quantile"] == ALWAYS
    with pytest.raises(ValueError, match="random fold first"):
        choose([wrong], "gate")
    with pytest.raises(ValueError, match="unknown fallback mode"):
        choose([right], "sometimes")
