"""A tiny Tune search (3 trials, 2 epochs, ASHA) returns a best config that loads and trains."""

from __future__ import annotations

import math

import pytest

from router.tuning.data import carve, carve_domains
from router.tuning.search import SearchSettings, results_table, run_search, write_outputs

pytestmark = pytest.mark.ray


def test_tiny_search_writes_a_loadable_config_and_resumes(ray_session, embedded_synthetic, tmp_path):
    from ray import tune

    from router.model.config import load_train_config
    from router.model.estimator import CrossAttentionPredictor

    data = embedded_synthetic
    # validation: a random carve plus one training domain held out whole
    fit, val = carve_domains(data, 0.25, seed=0, holdout_domains=1)
    settings = SearchSettings(num_samples=3, max_epochs=2, grace_period=1, cpus_per_trial=0.5, name="tiny")
    space = {  # small networks so the test takes seconds; the default space is checked below
        "variant": "prompt_queries", "hidden_dim": tune.choice([8, 16]), "dropout": 0.0,
        "lr": tune.loguniform(1e-3, 1e-2), "weight_decay": 0.01, "cost_loss_weight": 0.5, "init_from_names": False,
        "reward": tune.choice(["linear", "exponential"]), "lambda_scale": tune.loguniform(0.5, 2.0),
        "model_repr": tune.choice(["name", "profile", "both"]), "profile_clusters": 4,
        "loss": tune.choice(["pointwise", "listwise", "pairwise"]), "decision_loss_weight": 0.5,
    }  # fmt: skip
    storage = str(tmp_path / "tune")
    grid = run_search(fit, val, settings, storage, "hash:64", space=space)
    rows = results_table(grid)
    assert len(rows) == 3 and not any(r["status"] == "error" for r in rows)
    best = rows[0]
    assert best["holdout_aiq"] is not None and 0.0 <= best["holdout_aiq"] <= 1.0
    # scored in and out of domain; the score is their mean
    assert best["holdout_aiq"] == pytest.approx((best["holdout_aiq_in"] + best["holdout_aiq_out"]) / 2)
    done = [r["holdout_aiq"] for r in rows if r["holdout_aiq"] is not None and not math.isnan(r["holdout_aiq"])]
    assert best["holdout_aiq"] == max(done)

    paths = write_outputs(rows, settings, tmp_path / "out")
    assert paths["csv"].read_text().count("\n") == 4  # header + 3 trials
    config = load_train_config(paths["best"])
    assert config.hidden_dim == best["config/hidden_dim"] and config.max_epochs == 2
    predictor = CrossAttentionPredictor(config).fit(fit.X, fit.quality, fit.cost, fit.models)
    assert predictor.predict(val.X).quality.shape == (len(val), len(fit.models))

    # A finished experiment restores from its storage path; a second fresh run there is refused.
    again = run_search(fit, val, settings, storage, "hash:64", resume=True, space=space)
    assert len(results_table(again)) == 3
    with pytest.raises(ValueError, match="already exists"):
        run_search(fit, val, settings, storage, "hash:64", space=space)


def test_default_space_and_settings_validate():
    from router.tuning.search import search_space, train_config_of

    settings = SearchSettings()
    space = search_space(settings)
    assert {"variant", "hidden_dim", "dropout", "lr", "cost_loss_weight", "reward", "lambda_scale",
            "model_repr", "profile_clusters", "loss", "decision_loss_weight"} <= set(space)  # fmt: skip
    assert settings.holdout_domains == 2
    sample = {"variant": "prompt_queries", "hidden_dim": 64, "dropout": 0.1, "lr": 1e-3, "weight_decay": 0.01,
              "cost_loss_weight": 0.5, "reward": "linear", "lambda_scale": 1.0}  # fmt: skip
    cfg = train_config_of(sample, settings)
    assert cfg.max_epochs == settings.max_epochs and cfg.hidden_dim == 64
    with pytest.raises(ValueError, match="variant"):
        SearchSettings(variants=["nope"])
    with pytest.raises(ValueError, match="reward"):
        SearchSettings(rewards=["nope"])


def test_carve_domains_holds_whole_training_domains_out(embedded_synthetic):
    data = embedded_synthetic
    fit, val = carve_domains(data, 0.2, seed=0, holdout_domains=1)
    out = set(val.domains[val.held_out].tolist())
    assert len(out) == 1 and not (out & set(fit.domains.tolist()))  # the fit rows never see that domain
    assert (~val.held_out).sum() > 0 and set(val.domains[~val.held_out].tolist()) <= set(fit.domains.tolist())
    assert len(fit) + len(val) == len(data)
    # at most all domains but one; 0 = the plain random carve
    _, val_all = carve_domains(data, 0.2, seed=0, holdout_domains=99)
    assert len(set(val_all.domains[val_all.held_out].tolist())) == len(set(data.domains.tolist())) - 1
    fit0, val0 = carve_domains(data, 0.2, seed=0, holdout_domains=0)
    assert not val0.held_out.any() and len(val0) == len(carve(len(data), 0.2, 0)[1])
