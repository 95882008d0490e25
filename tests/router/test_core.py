"""``router.Router``: the public object from prompt to decision (model-free hashing encoder)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from router import Decision, Prediction, Router, TrainConfig
from router.core import as_prompts, build_encoder
from router.model.artifact import ArtifactError

FAST = TrainConfig(hidden_dim=16, max_epochs=6, batch_size=64, seed=0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from router.data.synthetic import make_synthetic_table

    table = make_synthetic_table(n=200, seed=0)
    router = Router.train(table, FAST, encoder="hash:64", cache_dir=tmp_path_factory.mktemp("cache"))
    return router, router.save(tmp_path_factory.mktemp("art") / "router")


def test_route_one_prompt_or_a_list(saved):
    _, path = saved
    r = Router.load(path)
    one = r.route("math question: integral of x", lam=1.0)
    assert isinstance(one, Decision) and one.model in r.models and one.lam == 1.0
    assert set(one.quality) == set(r.models) and all(0 <= q <= 1 for q in one.quality.values())
    many = r.route(["math question: prove it", "chat question: coffee"], lam=0.0, reward="exp")
    assert [d.reward_name for d in many] == ["exponential", "exponential"]
    pred = r.predict(["a", "b", "c"])
    assert isinstance(pred, Prediction) and pred.quality.shape == pred.cost.shape == (3, len(r.models))


def test_loaded_router_predicts_what_the_trained_one_did(saved):
    trained, path = saved
    prompts = ["math question: a", "code question: b"]
    a, b = trained.predict(prompts), Router.load(path).predict(prompts)
    assert np.array_equal(a.quality, b.quality) and np.array_equal(a.cost, b.cost)


def test_chat_messages_route_like_their_user_text(saved):
    _, path = saved
    r = Router.load(path)
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "code question: fix my loop"}]
    assert r.route(chat, lam=0.5) == r.route("code question: fix my loop", lam=0.5)
    assert as_prompts([chat, "plain"]) == (["code question: fix my loop", "plain"], False)


@pytest.mark.parametrize(
    "prompts, error, words",
    [([], ValueError, "empty list"), (3, TypeError, "must be a string"), ("   ", ValueError, "empty"),
     ([{"role": "user", "content": ""}], ValueError, "no text")],
)  # fmt: skip
def test_bad_prompts_are_clear_errors(saved, prompts, error, words):
    with pytest.raises(error, match=words):
        Router.load(saved[1]).route(prompts)


def test_lambda_and_reward_are_checked_in_one_place(saved):
    r = Router.load(saved[1])
    with pytest.raises(ValueError, match="finite number >= 0"):
        r.route("x", lam=float("inf"))
    with pytest.raises(ValueError, match="unknown reward"):
        r.route("x", reward="quadratic")


def test_encoder_is_checked_against_the_artifact(saved):
    _, path = saved
    with pytest.raises(ArtifactError, match="trained on encoder 'hash:64'"):
        Router.load(path, encoder="hash:32")
    assert Router.load(path, encoder="hash:64").encoder_name == "hash:64"
    assert build_encoder("st:all-MiniLM-L6-v2").model_name == "all-MiniLM-L6-v2"  # lazy: not loaded here
    assert build_encoder("st:all-MiniLM-L6-v2:raw").normalize is False
    with pytest.raises(ArtifactError, match="hash:<dim>"):
        build_encoder("hash:abc")


def test_a_router_travels_without_its_encoder(saved):
    r = Router.load(saved[1])
    r.route("warm up")
    copy = pickle.loads(pickle.dumps(r))
    assert copy._encoder is None and copy.route("x").model == r.route("x").model


def test_model_queries_without_prompts_is_refused(tmp_path):
    from router.model.estimator import CrossAttentionPredictor

    router = Router(CrossAttentionPredictor(TrainConfig(variant="model_queries")), "st:all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="pass the prompts"):
        router.features(None, X=np.zeros((2, 384), dtype=np.float32))


def test_default_router_reports_its_two_estimates_spread_and_a_network_alone_none(saved):
    r, _ = saved
    gated = r.predictor
    assert gated.config.fallback == "gate_blend"  # the default
    prompts = ["math question: a", "chat question: b"]
    X = r.embed(prompts)
    _, q_knn = gated.neighbours_.query(X)
    sigma = r.predict(prompts).uncertainty
    np.testing.assert_allclose(sigma, np.abs(gated.network_.predict(X).quality - q_knn) / 2.0)
    decision = r.route(prompts[0])
    assert set(decision.uncertainty) == set(r.models) and decision.uncertainty == pytest.approx(dict(zip(r.models, sigma[0])))

    from router.data.synthetic import make_synthetic_table

    alone = Router.train(make_synthetic_table(n=120, seed=1), FAST.model_copy(update={"fallback": "off"}), encoder="hash:64", use_cache=False)
    assert alone.predict(["a"]).uncertainty is None and alone.route("a").uncertainty is None


def test_ensemble_router_carries_uncertainty_to_the_decision(tmp_path):
    from router.data.synthetic import make_synthetic_table

    table = make_synthetic_table(n=160, seed=0)
    cfg = FAST.model_copy(update={"max_epochs": 3})
    r = Router.train(table, cfg, encoder="hash:64", use_cache=False, ensemble={"members": 2, "domain_folds": 1})
    assert r.is_ensemble and "ensemble of 2" in repr(r)
    assert r.predictor.selection_["folds"][1].startswith("domain ")  # the table's domains reached the folds
    pred = r.predict(["math question: a", "chat question: b"])
    assert pred.uncertainty.shape == (2, len(r.models)) and (pred.uncertainty >= 0).all()
    d = r.route("math question: a")
    assert set(d.uncertainty) == set(r.models)
    loaded = Router.load(r.save(tmp_path / "ens"))
    assert loaded.is_ensemble and loaded.route("math question: a").uncertainty == pytest.approx(d.uncertainty)
