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
