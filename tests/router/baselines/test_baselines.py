"""Each RouterBench baseline beats a random router on the synthetic table, and is a well-formed
``Predictor`` (shapes, [0, 1] quality, mean training cost as the cost estimate)."""

import numpy as np
import pytest

from router.baselines import knn, mlp, svm
from router.baselines.base import BASELINE_REWARD
from router.evaluation.metrics import aiq_routerbench, ndch
from router.evaluation.sweep import sweep
from router.prediction import Prediction
from router.registry import BuildContext, family_builder

FAMILIES = {
    "knn": ["knn_k5", "knn_k10", "knn_k40"],
    "mlp": ["mlp_100", "mlp_100x100"],
    "svm": ["svm"],
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
