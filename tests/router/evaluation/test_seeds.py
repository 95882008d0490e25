"""Several seeds: mean ± std over per-seed runs, in and out of domain."""

import json

import numpy as np
import pytest

from router.data.splits import routerbench_split
from router.evaluation import runner
from router.evaluation.bootstrap import BootstrapConfig
from router.evaluation.seeds import aggregate_runs, fmt, mean_std
from router.registry import BuildContext


def test_mean_std():
    assert mean_std([1.0]) == (1.0, 0.0)
    m, s = mean_std([1.0, 2.0, 4.0])
    assert m == pytest.approx(7 / 3) and s == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert fmt({"aiq": 0.5, "aiq_std": 0.01, "aiq_seeds": [0.49, 0.51]}, "aiq", 13).strip() == "0.5000±0.0100"
    assert fmt({"aiq": 0.5}, "aiq").strip() == "0.5000"
    with pytest.raises(ValueError, match="one result per seed"):
        aggregate_runs([], [0])


def test_seeds_vary_split_and_router(synthetic_table, hashing_encoder, tmp_path):
    """Run i uses router seed ctx.seed + i and split(i); the summary is their mean ± std."""
    seen = []

    def split(i):
        seen.append(i)
        return routerbench_split(synthetic_table, seed=42 + i)

    res = runner.evaluate_seeds(split, ["svm"], hashing_encoder, BuildContext(seed=5), seeds=3, bootstrap=BootstrapConfig(resamples=200))
    assert seen == [0, 1, 2] and res["seeds"] == [5, 6, 7] and len(res["runs"]) == 3
    values = [r["routers"]["svm"]["aiq"] for r in res["runs"]]
    assert len(set(values)) > 1  # different splits give different numbers
    svm = res["routers"]["svm"]
    assert svm["aiq"] == pytest.approx(np.mean(values)) and svm["aiq_seeds"] == values
    assert svm["aiq_std"] == pytest.approx(np.std(values, ddof=1))
    assert res["zero_router"]["aiq"] == pytest.approx(np.mean([r["zero_router"]["aiq"] for r in res["runs"]]))
    nr = res["no_router"]["no_router_routerbench"]
    assert nr["aiq"] == pytest.approx(np.mean([r["no_router"]["no_router_routerbench"]["aiq"] for r in res["runs"]]))
    # The pooled bootstrap's point difference is the mean of the per-seed differences.
    d = res["bootstrap"]["rows"]["svm"]["vs_zero_router"]
    assert d["diff"] == pytest.approx(np.mean([r["routers"]["svm"]["aiq"] - r["zero_router"]["aiq"] for r in res["runs"]]))
    assert d["lo"] <= d["hi"]
    text = runner.format_table(res)
    assert "mean ± std over 3 seeds" in text and "±" in text.splitlines()[3]
    path = runner.write_results(res, tmp_path / "o")
    assert json.loads(path.read_text())["seeds"] == [5, 6, 7]
    assert all((tmp_path / "o" / f"cost_quality_seed{s}.png").exists() for s in (5, 6, 7))
    # One seed is exactly the single evaluation.
    one = runner.evaluate_seeds(split, ["svm"], hashing_encoder, BuildContext(seed=5), seeds=1, bootstrap=BootstrapConfig(resamples=0))
    assert "seeds" not in one and one["routers"]["svm"]["aiq"] == values[0]
    with pytest.raises(ValueError, match="seeds"):
        runner.evaluate_seeds(split, ["svm"], hashing_encoder, seeds=0)


def test_cross_domain_with_seeds(synthetic_table, hashing_encoder):
    summary, per_domain = runner.evaluate_cross_domain(
        synthetic_table, ["svm"], hashing_encoder, BuildContext(seed=0), seeds=2, bootstrap=BootstrapConfig(resamples=100)
    )
    assert summary["seeds"] == [0, 1]
    mean = summary["cross_domain"]["mean"]["routers"]["svm"]
    by_seed = [np.mean([per_domain[d]["runs"][s]["routers"]["svm"]["aiq"] for d in per_domain]) for s in range(2)]
    assert mean["aiq"] == pytest.approx(np.mean(by_seed))
    assert mean["aiq_seeds"] == pytest.approx(by_seed) and mean["aiq_std"] == pytest.approx(np.std(by_seed, ddof=1))
    assert "±" in runner.format_cross_domain_table(summary)
