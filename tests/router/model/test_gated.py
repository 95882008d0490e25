"""The cross-attention network behind the distance gate / KNN blend (``router.model.gated``,
``TrainConfig.fallback``): knobs chosen on training-side folds, w = 1 is exactly the deployable
no-router, prompts far from the training prompts get larger w, the artifact round trip predicts
the same, bad knobs name their field."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from router.baselines.prior import PriorPredictor
from router.evaluation.sweep import sweep_choices
from router.gate import ALWAYS, NeighbourIndex
from router.model.artifact import ArtifactError, load_artifact, save_artifact
from router.model.config import TrainConfig, load_train_config
from router.model.estimator import CrossAttentionPredictor
from router.model.gated import GatedPredictor
from tests.router.model.conftest import FAST

SMALL = dict(FAST, max_epochs=8, patience=3, fallback="gate_blend", fallback_domain_folds=1)


@pytest.fixture(scope="module")
def gated(embedded_synthetic):
    from router.data.splits import domains

    train, _, X, _, _ = embedded_synthetic
    return GatedPredictor(TrainConfig(**SMALL)).fit(X, train.quality, train.cost, train.models, domains=domains(train.eval_names))


def test_fit_chooses_on_a_random_and_a_domain_fold(gated, embedded_synthetic):
    train, test, X, Xt, _ = embedded_synthetic
    sel = gated.selection_
    assert sel["folds"][0] == "random" and sel["folds"][1].startswith("domain ") and len(sel["folds"]) == 2
    assert sel["alpha"] in sel["alpha_grid"] and [sel["quantile"], sel["scale"]] in sel["gate_grid"]
    assert np.shape(sel["gate_val_aiq"]) == (2, len(sel["gate_grid"]))
    pred = gated.predict(Xt)
    assert pred.quality.shape == pred.cost.shape == (len(test), len(train.models))
    assert np.all((pred.quality >= 0) & (pred.quality <= 1))
    # "off" is the final network alone: the network a plain fit of the same config gives.
    plain = CrossAttentionPredictor(TrainConfig(**{**SMALL, "fallback": "off"})).fit(X, train.quality, train.cost, train.models)
    np.testing.assert_array_equal(gated.with_mode("off").predict(Xt).quality, plain.predict(Xt).quality)
    assert gated.with_mode("blend").params_["d0"] == float("inf")  # blend only: no gate


def test_full_gate_is_exactly_the_deployable_no_router(gated, embedded_synthetic):
    train, test, X, Xt, _ = embedded_synthetic
    floor = GatedPredictor.from_fitted(gated.config, gated.network_, gated.neighbours_,
                                       {"alpha": 0.5, "quantile": ALWAYS, "scale": 0.0, "d0": ALWAYS, "s": 1.0},
                                       gated.prior_, gated.prior_cost_)  # fmt: skip
    got = floor.predict(Xt)
    prior = PriorPredictor().fit(X, train.quality, train.cost, train.models).predict(Xt)
    np.testing.assert_array_equal(got.quality, prior.quality)
    np.testing.assert_array_equal(got.cost, prior.cost)
    for reward in ("linear", "routerbench"):
        mine, _ = sweep_choices(got, reward, c_ref=gated.c_ref_)
        theirs, _ = sweep_choices(prior, reward, c_ref=gated.c_ref_)
        np.testing.assert_array_equal(mine, theirs)


def test_ood_prompts_get_a_larger_gate_weight(gated, embedded_synthetic):
    train, _, _, Xt, enc = embedded_synthetic
    # Prompts of words the synthetic training prompts never use: hashed far from every training prompt.
    ood = enc.encode([f"zq{i} xv{i * 7} kw{i * 13} plover{i} quux{i % 5}" for i in range(30)])
    tuned = GatedPredictor.from_fitted(gated.config, gated.network_, gated.neighbours_,
                                       {**gated.params_, **dict(zip(("d0", "s"), _absolute(gated, 0.9, 0.3))), "quantile": 0.9, "scale": 0.3},
                                       gated.prior_, gated.prior_cost_)  # fmt: skip
    d_in, w_in = tuned.gate(Xt)
    d_out, w_out = tuned.gate(ood)
    assert d_out.mean() > d_in.mean() and w_out.mean() > w_in.mean() + 0.3


def _absolute(gated, q, s):
    from router.gate import absolute

    return absolute(gated.neighbours_.reference(), q, s)


def test_artifact_round_trip_predicts_the_same(gated, embedded_synthetic, tmp_path):
    from router.core import Router

    train, _, _, Xt, enc = embedded_synthetic
    out = save_artifact(gated, tmp_path / "gated", enc.name, enc.dim, extra={"note": "t"})
    assert sorted(p.name for p in out.iterdir()) == ["gate.json", "manifest.json", "neighbours.safetensors", "network"]
    art = load_artifact(out, expect_encoder=enc.name, expect_models=train.models, expect_dim=enc.dim)
    assert isinstance(art.predictor, GatedPredictor) and art.config.fallback == "gate_blend" and art.extra == {"note": "t"}
    a, b = gated.predict(Xt), art.predictor.predict(Xt)
    np.testing.assert_array_equal(a.quality, b.quality)
    np.testing.assert_array_equal(a.cost, b.cost)
    assert art.predictor.params_ == gated.params_
    router = Router.load(out, encoder=enc)
    assert router.models == tuple(train.models) and router.c_ref == gated.c_ref_
    np.testing.assert_array_equal(router.predict_embedded(Xt).quality, a.quality)
    # A changed neighbour index is caught by the manifest.
    raw = bytearray((out / "neighbours.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (out / "neighbours.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="neighbours.safetensors: checksum mismatch"):
        load_artifact(out)
    with pytest.raises(ArtifactError, match="other pool"):
        load_artifact(save_artifact(gated, tmp_path / "g2", enc.name, enc.dim), expect_models=["x", "y", "z"])


def test_bad_knobs_name_their_field(tmp_path, embedded_synthetic):
    from router.core import Router

    for field, value in (("fallback", "sometimes"), ("fallback_k", 0), ("fallback_blend_k", -1), ("fallback_val_fraction", 1.5),
                         ("fallback_domain_folds", -2)):  # fmt: skip
        with pytest.raises(ValidationError, match=field):
            TrainConfig(**{field: value})
    path = tmp_path / "cfg.yaml"
    path.write_text("fallback: gate\nfallback_k: 0\n")
    with pytest.raises(ValueError, match="fallback_k"):
        load_train_config(path)
    with pytest.raises(ValueError, match="fallback 'gate' and an ensemble"):
        Router.untrained(TrainConfig(fallback="gate"), embedded_synthetic[4], ensemble=2)
    train, _, X, _, _ = embedded_synthetic
    blend = GatedPredictor(TrainConfig(**{**SMALL, "fallback": "blend", "max_epochs": 2})).fit(X, train.quality, train.cost, train.models)
    with pytest.raises(ValueError, match="no domain folds"):
        blend.with_mode("gate")


def test_router_untrained_builds_the_gated_predictor(embedded_synthetic):
    from router.core import Router

    train, _, X, Xt, enc = embedded_synthetic
    router = Router.untrained(TrainConfig(**{**SMALL, "fallback": "gate", "max_epochs": 3}), enc)
    assert isinstance(router.predictor, GatedPredictor)
    # Without domains the gate's folds are k-means clusters of the embeddings.
    router.fit(X, train.quality, train.cost, train.models)
    assert router.predictor.selection_["folds"][1].startswith("domain cluster")
    assert router.predict_embedded(Xt).quality.shape == (len(Xt), len(train.models)) and not router.is_ensemble


def test_adding_a_model_to_a_fallback_router_checks_the_probe_set(gated, embedded_synthetic):
    # Growing a fallback router works (tests/router/model/test_extend.py); bad probes are refused as for a network.
    from router.model.extend import add_model

    _, _, X, _, _ = embedded_synthetic
    with pytest.raises(ValueError, match="at least 5"):
        add_model(gated, "new", X[:3], np.ones(3), np.ones(3))
