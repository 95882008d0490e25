"""The paired bootstrap: resampled sweeps, the zero router per resample, intervals and verdicts."""

import numpy as np
import pytest

from router.evaluation.bootstrap import ZERO, BootstrapConfig, Unit, _counts, compare_rows, format_intervals, interval, resampled_aiq, unit_resampled_aiq
from router.evaluation.metrics import aiq_paper, ndch, zero_router


@pytest.fixture
def unit():
    rng = np.random.default_rng(3)
    n = 60
    q = (rng.random((n, 3)) < [0.3, 0.6, 0.9]).astype(float)
    c = np.tile([1.0, 3.0, 10.0], (n, 1)) * rng.uniform(0.9, 1.1, (n, 3))
    lams = 8
    # "oracle-ish": the cheapest right model at high λ, the cheapest model at λ 0; "constant": model 0 (cheap, weak) always.
    best = np.where(q[:, 0] > 0, 0, np.where(q[:, 1] > 0, 1, 2))
    good = np.stack([np.zeros(n, int)] * 2 + [best] * (lams - 2))
    return Unit(q, c, {"good": good, "good_copy": good.copy(), "constant": np.zeros((lams, n), int)})


def test_counts_are_resamples_of_size_n():
    w = _counts(np.random.default_rng(0), 7, 50)
    assert w.shape == (7, 50) and (w.sum(axis=1) == 50).all() and (w >= 0).all()


def test_a_resampled_sweep_is_the_resampled_prompts_own_sweep(unit):
    """Resample 0 of each row equals AIQ of the sweep recomputed on the drawn prompts, and the
    zero router is the hull of the single models on those prompts."""
    out = unit_resampled_aiq(unit, ["good", "constant"], 5, np.random.default_rng(11))
    w = _counts(np.random.default_rng(11), 5, len(unit.quality))
    idx = np.repeat(np.arange(len(unit.quality)), w[0].astype(int))
    q, c = unit.quality[idx], unit.cost[idx]
    rows = np.arange(len(idx))
    pts = [(c[rows, ch[idx]].sum(), q[rows, ch[idx]].mean()) for ch in unit.choices["good"]]
    assert out["good"][0] == pytest.approx(aiq_paper(ndch(pts)))
    assert out["constant"][0] == pytest.approx(q[:, 0].mean())  # one point: its quality
    single = np.stack([c.sum(axis=0), q.mean(axis=0)], axis=1)
    assert out[ZERO][0] == pytest.approx(aiq_paper(zero_router(single)))


def test_identical_rows_tie_with_a_zero_interval_and_a_better_row_wins(unit):
    cfg = BootstrapConfig(resamples=400, seed=1)
    units = [unit]
    boot = resampled_aiq(units, ["good", "good_copy", "constant"], cfg)
    assert all(len(v) == 400 for v in boot.values())
    point = {r: float(boot[r].mean()) for r in boot}  # stand-ins for the point AIQs
    res = compare_rows(units, point, baselines=["good_copy", "constant"], cfg=cfg)
    same = res["rows"]["good"]["vs_best_baseline"]
    assert same["baseline"] == "good_copy"
    assert (same["lo"], same["hi"], same["verdict"]) == (0.0, 0.0, "tie")
    # good_copy's best OTHER baseline is "constant", which it beats in every resample.
    vs_const = res["rows"]["good_copy"]["vs_best_baseline"]
    assert vs_const["baseline"] == "constant" and vs_const["verdict"] == "better" and vs_const["lo"] > 0
    lines = format_intervals(res)
    assert "tie" in lines[1] and "better" in "\n".join(lines)


def test_reproducible_per_seed_and_units_are_averaged(unit):
    a = resampled_aiq([unit], ["good"], BootstrapConfig(resamples=50, seed=2))
    b = resampled_aiq([unit], ["good"], BootstrapConfig(resamples=50, seed=2, chunk=7))
    c = resampled_aiq([unit], ["good"], BootstrapConfig(resamples=50, seed=3))
    assert np.array_equal(a["good"], b["good"])  # chunking does not change the draws
    assert not np.array_equal(a["good"], c["good"])
    # Two units: unit 0 draws exactly as alone; the result is the mean of the two.
    two = resampled_aiq([unit, unit], ["good"], BootstrapConfig(resamples=50, seed=2))
    second = unit_resampled_aiq(unit, ["good"], 50, np.random.default_rng([2, 1]))["good"]
    assert np.allclose(two["good"], (a["good"] + second) / 2)


def test_floors_and_interval_rules(unit):
    cfg = BootstrapConfig(resamples=100)
    point = {"good": 0.8, "constant": 0.6, "floor": 0.6, ZERO: 0.7}
    unit.choices["floor"] = unit.choices["constant"]
    res = compare_rows([unit], point, baselines=["constant"], floors={"good": "floor", "constant": "floor"}, cfg=cfg)
    assert set(res["rows"]["good"]) == {"vs_best_baseline", "vs_no_router", "vs_zero_router"}
    assert set(res["rows"]["floor"]) == {"vs_zero_router"}
    assert "vs_best_baseline" not in res["rows"]["constant"]  # no other baseline
    assert res["rows"]["good"]["vs_best_baseline"]["diff"] == pytest.approx(0.2)
    assert compare_rows([unit], point, ["constant"], cfg=BootstrapConfig(resamples=0))["rows"] == {}
    assert interval(0.1, np.array([-0.1, 0.2, 0.3]), 0.95)["verdict"] == "tie"
    assert interval(0.1, np.array([0.05, 0.2, 0.3]), 0.95)["verdict"] == "better"
    assert interval(-0.1, np.array([-0.05, -0.2]), 0.95)["verdict"] == "worse"
    with pytest.raises(ValueError, match="choices"):
        unit_resampled_aiq(Unit(unit.quality, unit.cost, {"bad": np.zeros((2, 3), int)}), ["bad"], 2, np.random.default_rng(0))
