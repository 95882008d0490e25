"""Each baseline (RouterBench's, matrix factorisation) beats a random router on the synthetic table, and is a well-formed
``Predictor`` (shapes, [0, 1] quality, mean training cost as the cost estimate)."""

import numpy as np
import pytest

from router.baselines import knn, mf, mlp, svm
from router.baselines.prior import PriorPredictor
from router.baselines.base import BASELINE_REWARD
from router.evaluation.metrics import aiq_routerbench, ndch
from router.evaluation.sweep import sweep
from router.prediction import Prediction
from router.registry import BuildContext, family_builder

FAMILIES = {
    "knn": ["knn_k5", "knn_k10", "knn_k40"],
    "mlp": ["mlp_100", "mlp_100x100"],
    "svm": ["svm"],
    "mf": ["mf"],
}


def random_prediction(n, mean_cost, seed=0):
    rng = np.random.default_rng(seed)
    return Prediction(quality=rng.random((n, len(mean_cost))), cost=np.broadcast_to(mean_cost, (n, len(mean_cost))).copy())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_registry_builds_the_rows_routerbench_configures(family):
    entries = family_builder(family)(BuildContext(seed=3))
    rows = [r for e in entries for r in e.rows]
    assert rows == FAMILIES[family]
    assert all(set(e.rows.values()) == {BASELINE_REWARD} and not e.fitted for e in entries)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_baseline_beats_a_random_router(family, embedded_split):
    s = embedded_split
    for entry in family_builder(family)(BuildContext(seed=0)):
        pred = entry.predictor.fit(s.X_train, s.q_train, s.c_train, s.models).predict(s.X_test)
        assert pred.quality.shape == s.q_test.shape
        assert pred.quality.min() >= 0 and pred.quality.max() <= 1
        np.testing.assert_allclose(pred.cost, np.broadcast_to(s.c_train.mean(axis=0), s.q_test.shape))
        hull = ndch(sweep(pred, s.q_test, s.c_test, BASELINE_REWARD))
        randoms = [
            ndch(sweep(random_prediction(len(s.q_test), s.c_train.mean(axis=0), seed), s.q_test, s.c_test, BASELINE_REWARD))
            for seed in range(5)
        ]
        scores = aiq_routerbench([hull, *randoms])
        assert scores[0] > max(scores[1:]), (entry.rows, scores)


def test_knn_prediction_is_the_neighbours_mean_quality():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    q = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    c = np.array([[1.0, 2.0], [3.0, 2.0], [1.0, 2.0], [3.0, 2.0]])
    router = knn.KNNRouter(k=2).fit(X, q, c, ["a", "b"])
    pred = router.predict(np.array([[1.0, 0.05], [0.05, 1.0]], dtype=np.float32))
    np.testing.assert_allclose(pred.quality, [[0.5, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(pred.cost, [[2.0, 2.0], [2.0, 2.0]])


def test_k_larger_than_the_training_set_uses_all_rows():
    X = np.eye(3, dtype=np.float32)
    q = np.array([[1.0], [0.0], [1.0]])
    pred = knn.KNNRouter(k=40).fit(X, q, np.ones((3, 1)), ["a"]).predict(X)
    np.testing.assert_allclose(pred.quality, np.full((3, 1), 2 / 3))


def test_constant_target_and_clipping():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    q = np.stack([np.ones(40), (X[:, 0] > 0).astype(float)], axis=1)
    router = svm.make_svm(0).fit(X, q, np.ones((40, 2)), ["always", "half"])
    pred = router.predict(X)
    assert (pred.quality[:, 0] == 1.0).all()
    assert pred.quality.min() >= 0 and pred.quality.max() <= 1


def test_fit_and_predict_errors():
    with pytest.raises(ValueError, match="do not match"):
        knn.KNNRouter(5).fit(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), ["a"])
    with pytest.raises(RuntimeError, match="not fitted"):
        mlp.make_mlp((4,), 0).predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="k must be"):
        knn.KNNRouter(0)


def test_mf_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    X, Q = rng.normal(size=(7, 5)), rng.random((7, 3))
    params = {"W": rng.normal(size=(4, 5)), "P": rng.normal(size=(3, 4)), "w": rng.normal(size=4), "b": rng.normal(size=3)}
    _, grads = mf.loss_and_grads(params, X, Q)
    for key, value in params.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + 1e-6
            up = mf.loss_and_grads(params, X, Q)[0]
            value[idx] = old - 1e-6
            down = mf.loss_and_grads(params, X, Q)[0]
            value[idx] = old
            numeric[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(grads[key], numeric, atol=1e-8, err_msg=key)


def test_mf_is_seeded_and_starts_from_the_prior(embedded_split):
    s = embedded_split
    a = mf.MFRouter({"seed": 1, "max_epochs": 5}).fit(s.X_train, s.q_train, s.c_train, s.models).predict(s.X_test)
    b = mf.MFRouter({"seed": 1, "max_epochs": 5}).fit(s.X_train, s.q_train, s.c_train, s.models).predict(s.X_test)
    c = mf.MFRouter({"seed": 2, "max_epochs": 5}).fit(s.X_train, s.q_train, s.c_train, s.models).predict(s.X_test)
    np.testing.assert_array_equal(a.quality, b.quality)
    assert not np.array_equal(a.quality, c.quality)
    # The registry passes ctx.seed and ctx.options["mf"] through.
    (entry,) = family_builder("mf")(BuildContext(seed=4, options={"mf": {"dim": 8}}))
    assert (entry.predictor.config.seed, entry.predictor.config.dim) == (4, 8)
    with pytest.raises(ValueError):
        mf.MFConfig(dim=0)


def test_prior_predicts_each_models_training_means():
    X = np.zeros((4, 2), dtype=np.float32)
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
    c = np.array([[1.0, 2.0], [3.0, 2.0], [1.0, 2.0], [3.0, 6.0]])
    pred = PriorPredictor().fit(X, q, c, ["a", "b"]).predict(np.ones((3, 2), dtype=np.float32))
    np.testing.assert_allclose(pred.quality, [[0.5, 0.75]] * 3)
    np.testing.assert_allclose(pred.cost, [[2.0, 3.0]] * 3)
