"""The comparison's main/cross/tables parts end to end on a small synthetic file (hashing
encoder, a tiny cross-attention config): seeds, bootstrap intervals and resumable folds."""

import json

import pytest

from router.data.synthetic import make_synthetic_frame
from experiments import compare


@pytest.mark.slow
def test_main_cross_and_tables(tmp_path, cache_dir, fast, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the dataset's name is its relative path, also under OUT
    data = tmp_path / "syn.parquet"
    make_synthetic_frame(n=60, seed=3).to_parquet(data)
    cfg = tmp_path / "fast.json"
    cfg.write_text(json.dumps({**fast, "max_epochs": 3}))
    out = tmp_path / "cmp"
    args = ["--out", str(out), "--datasets", "syn.parquet", "--config", str(cfg), "--encoder", "hash:32", "--seeds", "2",
            "--bootstrap", "50", "--routers", "knn,cross_attention", "--cross-routers", "knn,mf"]  # fmt: skip
    assert compare.main([*args, "--parts", "main,cross,tables"]) == 0
    name = "syn.parquet"
    ind = json.loads((out / name / "in_distribution" / "results.json").read_text())
    assert ind["seeds"] == [0, 1]
    # The cross-attention rows vary with the seed (its own randomness); the summary is their mean.
    vals = ind["routers"]["cross_attention_linear"]["aiq_seeds"]
    assert len(vals) == 2 and ind["routers"]["cross_attention_linear"]["aiq"] == pytest.approx(sum(vals) / 2)
    cd = json.loads((out / name / "cross_domain" / "results.json").read_text())["cross_domain"]
    assert set(cd["bootstrap"]["rows"]["mf"]) == {"vs_best_baseline", "vs_no_router", "vs_zero_router"}
    tables = (out / "tables.md").read_text()
    assert "Paired bootstrap" in tables and "±" in tables and "no_router_linear" in tables and "Best cross-attention row" in tables
    # A rerun of the cross part reads every fold from disk (no training) and gives the same summary
    # (to float noise: BLAS may sum the reloaded arrays in another order).
    before = json.loads((out / name / "cross_domain" / "results.json").read_text())["cross_domain"]
    capsys.readouterr()
    assert compare.main([*args, "--parts", "cross"]) == 0
    printed = capsys.readouterr().out
    assert ": reused in" in printed and ": evaluated in" not in printed
    after = json.loads((out / name / "cross_domain" / "results.json").read_text())["cross_domain"]
    assert after["mean"] == before["mean"]
    for row, e in before["bootstrap"]["rows"].items():
        for key, d in e.items():
            assert after["bootstrap"]["rows"][row][key]["lo"] == pytest.approx(d["lo"], abs=1e-12)

    # A changed cross-attention config is not served from the folds on disk: a plain rerun evaluates
    # again; --refresh trains only the refreshed family and keeps the other rows as they were.
    cfg.write_text(json.dumps({**fast, "max_epochs": 2}))
    assert compare.main([*args, "--parts", "main", "--refresh", "cross_attention"]) == 0
    assert "in-distribution: refreshed" in capsys.readouterr().out
    ref = json.loads((out / name / "in_distribution" / "results.json").read_text())
    assert ref["refreshed"] == ["cross_attention"] and ref["run_config"]["cross_attention"]["max_epochs"] == 2
    assert ref["routers"]["knn_k40"]["aiq_seeds"] == ind["routers"]["knn_k40"]["aiq_seeds"]
    assert set(ref["routers"]) == set(ind["routers"]) and "cross_attention_linear" in ref["bootstrap"]["rows"]
    assert compare.main([*args, "--parts", "cross", "--domains", "none-such"]) == 0  # folds on disk, none trained
    assert compare.main([*args, "--parts", "main"]) == 0
    assert "in-distribution: reused" in capsys.readouterr().out  # the refresh wrote the new fingerprint
    cfg.write_text(json.dumps({**fast, "max_epochs": 1}))
    assert compare.main([*args, "--parts", "main"]) == 0
    assert "in-distribution: evaluated" in capsys.readouterr().out
