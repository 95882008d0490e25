"""``python -m experiments.variants``: the variants are scored on training-side folds only (a random
carve and leave-one-domain-out folds of the train half; the test half is never read)."""

from __future__ import annotations


def test_variants_are_scored_on_train_side_folds(hashing_encoder):
    from experiments.variants import VARIANTS, run
    from router.data.synthetic import make_synthetic_table

    table = make_synthetic_table(n=160, seed=0)
    variants = {k: VARIANTS[k] for k in ("default", "profile", "listwise")}
    res = run(table, hashing_encoder, variants, domain_folds=1, base={"max_epochs": 2, "hidden_dim": 8, "profile_clusters": 4})
    assert list(res["folds"]) == ["random", next(f for f in res["folds"] if f.startswith("domain "))]
    from router.data.splits import train_test_split

    assert res["n_train_half"] == len(train_test_split(table, "auto")[0]) < len(table)
    for name in ("knn_k40", "no_router", *variants):
        assert 0.0 <= res["summary"][name]["random"] <= 1.0
    assert res["summary"]["default"]["minus_default_random"] == 0.0


def test_fallback_variants_share_one_fit_whose_network_is_the_default(hashing_encoder):
    from experiments.variants import VARIANTS, run
    from router.data.synthetic import make_synthetic_table

    table = make_synthetic_table(n=160, seed=0)
    variants = {k: VARIANTS[k] for k in ("default", "gate_blend", "gate", "blend")}
    res = run(table, hashing_encoder, variants, domain_folds=1, base={"max_epochs": 2, "hidden_dim": 8})
    for row in res["folds"].values():
        assert row["gate_blend_network_alone"] == row["default"]  # the fallback's final network is the default's
        assert row["gate_shared_fit"] and row["blend_shared_fit"] and "gate_blend_shared_fit" not in row
        assert row["blend_chosen"]["d0"] == "inf" and 0.0 <= row["gate_mean_w"] <= 1.0
        assert row["gate_selection"]["folds"][0] == "random" and len(row["gate_selection"]["folds"]) >= 2  # + inner domain folds


def test_over_seeds_is_the_mean_and_std_of_the_runs():
    from experiments.variants import over_seeds

    def summary(default_rand, default_dom, floor_dom):
        return {"summary": {"default": {"random": default_rand, "domain_mean": default_dom, "minus_default_random": 0.0,
                                        "minus_default_domain_mean": 0.0},
                            "no_router": {"random": 0.5, "domain_mean": floor_dom, "minus_default_random": 0.5 - default_rand,
                                          "minus_default_domain_mean": floor_dom - default_dom}}}  # fmt: skip

    agg = over_seeds([summary(0.6, 0.50, 0.52), summary(0.8, 0.56, 0.52)])
    assert agg["default"]["random"] == 0.7 and abs(agg["default"]["random_std"] - 0.1414) < 1e-3
    assert abs(agg["default"]["domain_mean"] - 0.53) < 1e-12
    assert agg["default"]["share_seeds_domain_mean_at_or_above_floor"] == 0.5  # 0.50 < 0.52 <= 0.56
    assert agg["no_router"]["share_seeds_domain_mean_at_or_above_floor"] == 1.0
