"""The evaluation runner: schema, reference points on a tiny table, c_ref, fitted entries, output."""

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest

from router.data.splits import routerbench_split
from router.data.table import DataValidationError, validate_frame
from router.evaluation import runner
from router.evaluation.metrics import aiq_paper, ndch
from router.prediction import Prediction, Predictor
from router.registry import FAMILIES, BuildContext, RouterEntry

ROUTER_KEYS = {"aiq", "aiq_routerbench", "max_quality", "cost_at_max_quality", "points"}


class FixedPredictor(Predictor):
    """Predicts the given quality table for every prompt (the rows of X are ignored)."""

    def __init__(self, quality, models):
        self.quality = np.asarray(quality, dtype=float)
        self.models = tuple(models)

    def fit(self, X, quality, cost, models):
        raise AssertionError("a fitted entry must not be fitted again")

    def predict(self, X):
        n = len(X)
        return Prediction(quality=self.quality[:n].copy(), cost=np.tile([1.0, 10.0], (n, 1)))


@pytest.fixture
def tiny_tables():
    # Two models: "cheap" is right on prompts 0 and 2, "big" on all but 3. Costs 1 and 10.
    frame = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(4)],
            "prompt": ["alpha beta", "gamma delta", "alpha gamma", "delta beta"],
            "eval_name": ["a", "a", "b", "b"],
            "cheap": [1.0, 0.0, 1.0, 0.0],
            "cheap|total_cost": [1.0, 1.0, 1.0, 1.0],
            "big": [1.0, 1.0, 1.0, 0.0],
            "big|total_cost": [10.0, 10.0, 10.0, 10.0],
        }
    )
    table = validate_frame(frame, "tiny")
    return table, table


def test_reference_points_on_a_tiny_table(tiny_tables, hashing_encoder, monkeypatch):
    train, test = tiny_tables
    # A router that predicts the truth, registered as a fitted family for this test only.
    truth = FixedPredictor(test.quality, test.models)
    monkeypatch.setitem(FAMILIES, "truth", "tests_truth:build")
    mod = types.ModuleType("tests_truth")
    mod.build = lambda ctx: [RouterEntry(truth, {"truth_rb": "routerbench"}, fitted=True)]
    monkeypatch.setitem(sys.modules, "tests_truth", mod)

    res = runner.evaluate(train, test, ["truth"], hashing_encoder, BuildContext(), grid=[0.0, 5.0, 20.0, 100.0])
    assert res["models"] == ["cheap", "big"]
    assert res["single_models"] == {"cheap": {"quality": 0.5, "cost": 4.0}, "big": {"quality": 0.75, "cost": 40.0}}
    # Oracle: cheap, big, cheap, none -> quality 3/4, cost 1 + 10 + 1 + 0.
    assert res["oracle"] == {"quality": 0.75, "cost": 12.0}
    # Zero router: the hull of (4, .5) and (40, .75); AIQ (a) is the mean height .625.
    assert res["zero_router"]["points"] == [[4.0, 0.5], [40.0, 0.75]]
    assert res["zero_router"]["aiq"] == pytest.approx(0.625)
    # The router: λ=0 and 5 -> cheap everywhere (4, .5); λ=20, 100 -> cheap, big, cheap, cheap (13, .75).
    r = res["routers"]["truth_rb"]
    assert r["points"] == [[4.0, 0.5, 0.0], [4.0, 0.5, 5.0], [13.0, 0.75, 20.0], [13.0, 0.75, 100.0]]
    assert r["aiq"] == pytest.approx(0.625)
    assert (r["max_quality"], r["cost_at_max_quality"]) == (0.75, 13.0)
    # RouterBench's form with the common c_max = 40 (the zero router's): router (4..13 at
    # .5->.75, then flat .75 to 40) = (9 * .625 + 27 * .75) / 40; zero = 36 * .625 / 40.
    assert r["aiq_routerbench"] == pytest.approx((9 * 0.625 + 27 * 0.75) / 40)
    assert res["zero_router"]["aiq_routerbench"] == pytest.approx(36 * 0.625 / 40)
    # The deployable no-router: training means cheap .5 at 1, big .75 at 10; λq − c picks cheap up
    # to λ = 20 (10 − 1 > 15 − 10) and big at λ = 100 (75 − 10 > 50 − 1), for every prompt.
    nr = res["no_router"]["no_router_routerbench"]
    assert nr["reward"] == "routerbench"
    assert nr["models"] == ["cheap", "cheap", "cheap", "big"]
    assert nr["points"] == [[4.0, 0.5, 0.0], [4.0, 0.5, 5.0], [4.0, 0.5, 20.0], [40.0, 0.75, 100.0]]
    assert nr["aiq"] == pytest.approx(0.625)
    # Bootstrap: no baseline to beat here; the point difference to the zero router is 0.
    b = res["bootstrap"]
    assert b["best_baseline"] is None and b["resamples"] == 1000
    assert set(b["rows"]["truth_rb"]) == {"vs_zero_router", "vs_no_router"}
    assert b["rows"]["truth_rb"]["vs_zero_router"]["diff"] == pytest.approx(0.0)
    assert b["rows"]["truth_rb"]["vs_no_router"]["no_router"] == "no_router_routerbench"


def test_schema_on_the_synthetic_table(synthetic_table, hashing_encoder, tmp_path):
    train, test = routerbench_split(synthetic_table)
    res = runner.evaluate(train, test, ["knn", "svm"], hashing_encoder, BuildContext(seed=1))
    assert set(res) == {"dataset", "n_train", "n_test", "models", "routers", "no_router", "zero_router", "oracle", "single_models", "bootstrap", "calibration"}
    assert (res["n_train"], res["n_test"]) == (len(train), len(test))
    assert list(res["routers"]) == ["knn_k5", "knn_k10", "knn_k40", "svm"]
    for r in res["routers"].values():
        assert set(r) == ROUTER_KEYS
        assert len(r["points"]) == 32 and all(len(p) == 3 for p in r["points"])
        assert r["aiq"] == pytest.approx(aiq_paper(ndch(np.array(r["points"])[:, :2])))
        assert 0 <= r["aiq_routerbench"] <= r["max_quality"] <= res["oracle"]["quality"] + 1e-12
    assert set(res["zero_router"]) == {"aiq", "aiq_routerbench", "points"}
    assert list(res["no_router"]) == ["no_router_routerbench"]
    # Every baseline row is compared with the best OTHER baseline, the zero router and its floor.
    b = res["bootstrap"]
    best = max(res["routers"], key=lambda row: res["routers"][row]["aiq"])
    assert b["best_baseline"] == best
    for row, e in b["rows"].items():
        if row == "no_router_routerbench":
            assert set(e) == {"vs_zero_router"}
            continue
        assert e["vs_best_baseline"]["baseline"] != row
        for d in e.values():
            assert d["lo"] <= d["hi"] and d["verdict"] in {"better", "worse", "tie"}
            assert (d["verdict"] == "tie") == (d["lo"] <= 0 <= d["hi"])
    assert set(res["single_models"]) == set(synthetic_table.models)
    # The embedding cache was filled once: a second run embeds nothing.
    before = hashing_encoder.stats.encoded
    runner.evaluate(train, test, ["knn"], hashing_encoder)
    assert hashing_encoder.stats.encoded == before
    path = runner.write_results(res, tmp_path / "out")
    assert json.loads(path.read_text()) == json.loads(json.dumps(res))
    assert (tmp_path / "out" / "cost_quality.png").stat().st_size > 1000


def test_a_grid_per_reward(synthetic_table, hashing_encoder):
    train, test = routerbench_split(synthetic_table)
    res = runner.evaluate(train, test, ["svm"], hashing_encoder, grid={"routerbench": [0.0, 1e9]})
    assert [p[2] for p in res["routers"]["svm"]["points"]] == [0.0, 1e9]


def test_pools_must_match(synthetic_table, hashing_encoder):
    train, test = routerbench_split(synthetic_table)
    with pytest.raises(DataValidationError, match="pools differ"):
        runner.evaluate(train, test.with_models(["small", "large"]), ["knn"], hashing_encoder)
    with pytest.raises(ValueError, match="unknown router"):
        runner.evaluate(train, test, ["nope"], hashing_encoder)


def test_cross_domain_summary(synthetic_table, hashing_encoder, tmp_path):
    summary, per_domain = runner.evaluate_cross_domain(synthetic_table, ["knn"], hashing_encoder, dataset="syn")
    assert list(per_domain) == ["chat", "code", "math"]
    cd = summary["cross_domain"]
    assert set(cd) == {"domains", "mean", "bootstrap"}
    assert set(cd["domains"]["math"]) == {"n_train", "n_test", "routers", "no_router", "zero_router", "oracle", "calibration"}
    # The pooled bootstrap's point difference is the mean over domains of the per-domain ones.
    d = cd["bootstrap"]["rows"]["knn_k10"]["vs_zero_router"]["diff"]
    assert d == pytest.approx(np.mean([per_domain[x]["routers"]["knn_k10"]["aiq"] - per_domain[x]["zero_router"]["aiq"] for x in per_domain]))
    assert cd["mean"]["no_router"]["no_router_routerbench"]["aiq"] == pytest.approx(
        np.mean([per_domain[x]["no_router"]["no_router_routerbench"]["aiq"] for x in per_domain])
    )
    for key in ("aiq", "aiq_routerbench", "max_quality", "cost_at_max_quality"):
        assert cd["mean"]["routers"]["knn_k10"][key] == pytest.approx(
            np.mean([per_domain[d]["routers"]["knn_k10"][key] for d in per_domain])
        )
    assert cd["mean"]["oracle"]["quality"] == pytest.approx(np.mean([per_domain[d]["oracle"]["quality"] for d in per_domain]))
    runner.write_cross_domain(summary, per_domain, tmp_path / "cd")
    assert (tmp_path / "cd" / "math" / "results.json").exists()
    assert (tmp_path / "cd" / "math" / "cost_quality.png").exists()
    assert "cross_domain" in json.loads((tmp_path / "cd" / "results.json").read_text())


def test_domain_dirnames_are_safe():
    assert runner.domain_dirname("mmlu/high school") == "mmlu_high_school"
    assert runner.domain_dirname("grade-school-math") == "grade-school-math"


def test_predictors_that_want_domains_get_the_training_domains(synthetic_table, hashing_encoder, monkeypatch):
    from router.baselines.mf import MFRouter
    from router.evaluation.bootstrap import BootstrapConfig
    from router.uncertainty import UncertaintyRouter

    router = UncertaintyRouter(lambda s: MFRouter({"seed": s, "max_epochs": 3, "dim": 4}), {"members": 2, "domain_folds": 1})
    mod = types.ModuleType("tests_unc")
    mod.build = lambda ctx: [RouterEntry(router, {"unc": "routerbench"})]
    monkeypatch.setitem(FAMILIES, "unc", "tests_unc:build")
    monkeypatch.setitem(sys.modules, "tests_unc", mod)
    train, test = routerbench_split(synthetic_table)
    res = runner.evaluate(train, test, ["unc", "knn"], hashing_encoder, bootstrap=BootstrapConfig(resamples=50))
    assert router.selection_["folds"][1].startswith("domain ")
    # Not a baseline family: compared with the best baseline (a knn row) and its floor.
    assert res["bootstrap"]["rows"]["unc"]["vs_best_baseline"]["baseline"].startswith("knn")
    assert res["bootstrap"]["rows"]["unc"]["vs_no_router"]["no_router"] == "no_router_routerbench"


def test_runs_round_trip_through_disk(synthetic_table, hashing_encoder, tmp_path):
    from router.evaluation.bootstrap import BootstrapConfig

    train, test = routerbench_split(synthetic_table)
    runs = runner.evaluate_runs(lambda i: (train, test), 2, ["knn"], hashing_encoder)
    runner.save_runs(runs, tmp_path / "runs.npz")
    back = runner.load_runs(tmp_path / "runs.npz")
    assert [r.results for r in back] == json.loads(json.dumps([r.results for r in runs]))
    assert back[0].baselines == runs[0].baselines and back[0].floors == runs[0].floors
    for a, b in zip(runs, back):
        assert set(a.unit.choices) == set(b.unit.choices)
        assert all(np.array_equal(a.unit.choices[k], b.unit.choices[k]) for k in a.unit.choices)
    cfg = BootstrapConfig(resamples=100)
    x, y = runner.pooled_bootstrap(runs, cfg), runner.pooled_bootstrap(back, cfg)
    assert x["rows"]["knn_k5"]["vs_zero_router"]["lo"] == pytest.approx(y["rows"]["knn_k5"]["vs_zero_router"]["lo"], abs=1e-12)


def test_merged_runs_equal_one_evaluation_of_every_family(synthetic_table, hashing_encoder):
    """Refreshing one family of a stored evaluation (runner.merge_runs) gives what evaluating every
    family at once gives: the same rows, choices and RouterBench-form AIQ (its common c_max spans
    every row)."""
    train, test = routerbench_split(synthetic_table)
    both = runner.evaluate_run(train, test, ["knn", "svm"], hashing_encoder)
    merged = runner.merge_runs(runner.evaluate_run(train, test, ["knn"], hashing_encoder),
                               runner.evaluate_run(train, test, ["svm"], hashing_encoder))  # fmt: skip
    assert set(merged.results["routers"]) == set(both.results["routers"]) and sorted(merged.baselines) == sorted(both.baselines)
    for row, r in both.results["routers"].items():
        assert merged.results["routers"][row]["aiq"] == pytest.approx(r["aiq"], abs=1e-12)
        assert merged.results["routers"][row]["aiq_routerbench"] == pytest.approx(r["aiq_routerbench"], abs=1e-12)
        assert np.array_equal(merged.unit.choices[row], both.unit.choices[row])
    assert merged.results["zero_router"]["aiq_routerbench"] == pytest.approx(both.results["zero_router"]["aiq_routerbench"], abs=1e-12)
    other = runner.evaluate_run(train, train, ["svm"], hashing_encoder)
    with pytest.raises(ValueError, match="same test set"):
        runner.merge_runs(both, other)
