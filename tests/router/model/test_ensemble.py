"""The uncertainty-aware router as one predictor (``router.model.ensemble``) and its artifact:
K members with the shrinkage chosen on training-side folds, σ in every prediction, saved and
loaded with checksums; a single-network artifact still loads (``test_artifact.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router.model.artifact import ArtifactError, load_artifact, save_artifact
from router.model.config import TrainConfig
from router.model.ensemble import EnsemblePredictor
from router.model.estimator import CrossAttentionPredictor
from tests.router.model.conftest import FAST

SMALL = dict(FAST, max_epochs=8, patience=3)
UNC = {"members": 2, "domain_folds": 1}


@pytest.fixture(scope="module")
def ensemble(embedded_synthetic):
    from router.data.splits import domains

    train, _, X, _, _ = embedded_synthetic
    return EnsemblePredictor(TrainConfig(**SMALL), UNC).fit(X, train.quality, train.cost, train.models, domains=domains(train.eval_names))


def test_fit_chooses_on_a_random_and_a_domain_fold_and_predicts_sigma(ensemble, embedded_synthetic):
    train, test, _, Xt, _ = embedded_synthetic
    sel = ensemble.selection_
    assert sel["folds"][0] == "random" and sel["folds"][1].startswith("domain ")
    assert np.shape(sel["val_aiq"]) == (2, len(sel["grid"])) and ensemble.value_ in sel["grid"]
    assert [m.config.seed for m in ensemble.members_] == [0, 1]
    pred = ensemble.predict(Xt)
    assert pred.quality.shape == pred.cost.shape == pred.uncertainty.shape == (len(test), len(train.models))
    # σ is the std of the members' predicted quality.
    qs = np.stack([m.predict(Xt).quality for m in ensemble.members_])
    np.testing.assert_allclose(pred.uncertainty, qs.std(axis=0), rtol=1e-6)
    assert (pred.uncertainty > 0).any()
    assert ensemble.models == tuple(train.models) and ensemble.c_ref_ == ensemble.members_[0].c_ref_


def test_full_shrinkage_is_the_training_prior(embedded_synthetic):
    train, _, X, Xt, _ = embedded_synthetic
    ens = EnsemblePredictor(TrainConfig(**dict(SMALL, max_epochs=2)), {"members": 2, "domain_folds": 0, "grid": [0.0]})
    pred = ens.fit(X, train.quality, train.cost, train.models).predict(Xt)
    np.testing.assert_allclose(pred.quality, np.broadcast_to(train.quality.mean(axis=0), pred.quality.shape))
    np.testing.assert_allclose(pred.cost, np.broadcast_to(train.cost.mean(axis=0), pred.cost.shape))


def test_artifact_round_trip(ensemble, embedded_synthetic, tmp_path):
    _, _, _, Xt, enc = embedded_synthetic
    path = save_artifact(ensemble, tmp_path / "ens", enc.name, enc.dim, extra={"note": "x"})
    art = load_artifact(path, expect_encoder=enc.name, expect_models=ensemble.models, expect_dim=enc.dim)
    assert isinstance(art.predictor, EnsemblePredictor) and art.extra == {"note": "x"}
    a, b = ensemble.predict(Xt), art.predictor.predict(Xt)
    np.testing.assert_allclose(a.quality, b.quality)
    np.testing.assert_allclose(a.cost, b.cost)
    np.testing.assert_allclose(a.uncertainty, b.uncertainty)
    assert art.predictor.value_ == ensemble.value_ and art.predictor.selection_["folds"] == ensemble.selection_["folds"]
    # each member is itself a complete single-network artifact
    assert isinstance(load_artifact(path / "members" / "01").predictor, CrossAttentionPredictor)


def test_infinite_tau_survives_the_json(embedded_synthetic, tmp_path):
    train, _, X, Xt, enc = embedded_synthetic
    ens = EnsemblePredictor(TrainConfig(**dict(SMALL, max_epochs=2)), {"members": 2, "domain_folds": 0, "grid": [float("inf")]})
    ens.fit(X, train.quality, train.cost, train.models)
    path = save_artifact(ens, tmp_path / "inf", enc.name, enc.dim)
    assert json.loads((path / "ensemble.json").read_text())["rule"]["value"] == "inf"
    loaded = load_artifact(path).predictor
    assert loaded.value_ == float("inf")
    np.testing.assert_allclose(loaded.predict(Xt).quality, ens.predict(Xt).quality)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "ensemble.json").write_text((p / "ensemble.json").read_text().replace('"members"', '"members" ', 1)), "checksum mismatch"),
        (lambda p: (p / "members" / "00" / "weights.safetensors").write_bytes(b"junk"), "checksum mismatch"),
        (lambda p: (p / "members" / "01" / "manifest.json").unlink(), "missing file members/01/manifest.json"),
        (lambda p: (p / "manifest.json").unlink(), "missing file manifest.json"),
    ],
)
def test_a_damaged_ensemble_is_refused_with_the_reason(ensemble, embedded_synthetic, tmp_path, damage, message):
    enc = embedded_synthetic[4]
    path = save_artifact(ensemble, tmp_path / "ens", enc.name, enc.dim)
    damage(path)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(path)


def test_an_ensemble_for_another_pool_is_refused(ensemble, embedded_synthetic, tmp_path):
    enc = embedded_synthetic[4]
    path = save_artifact(ensemble, tmp_path / "ens", enc.name, enc.dim)
    with pytest.raises(ArtifactError, match="other pool"):
        load_artifact(path, expect_models=("a", "b", "c"))


def test_unfitted_ensemble_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        EnsemblePredictor().predict(np.zeros((1, 4)))
