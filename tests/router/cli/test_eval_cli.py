"""``router eval`` end to end on a small fixture file with the model-free hashing encoder."""

import json

import pytest

from router.cli.main import main
from router.data.synthetic import make_synthetic_frame


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "syn.parquet"
    make_synthetic_frame(n=120, seed=1).to_parquet(path)
    return path


def test_eval_end_to_end(data_file, tmp_path, cache_dir, capsys):
    out = tmp_path / "out"
    rc = main(["eval", "--data", str(data_file), "--routers", "knn,svm", "--out", str(out), "--encoder", "hash:64", "--split", "routerbench"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res) == {"dataset", "n_train", "n_test", "models", "routers", "no_router", "zero_router", "oracle", "single_models", "bootstrap", "calibration"}
    assert res["n_train"] + res["n_test"] == 120
    assert list(res["routers"]) == ["knn_k5", "knn_k10", "knn_k40", "svm"]
    assert all(len(r["points"]) == 32 for r in res["routers"].values())
    assert (out / "cost_quality.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    for name in ["knn_k40", "svm", "zero router", "oracle", "small", "medium", "large"]:
        assert name in printed


def test_eval_with_train_data_and_grid(data_file, tmp_path, cache_dir):
    other = tmp_path / "train.csv"
    make_synthetic_frame(n=60, seed=2).to_csv(other, index=False)
    out = tmp_path / "out"
    rc = main(["eval", "--data", str(data_file), "--train-data", str(other), "--routers", "knn", "--out", str(out),
               "--encoder", "hash:32", "--grid", "0,0.01,1e9"])  # fmt: skip
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert (res["n_train"], res["n_test"]) == (60, 120)
    assert [p[2] for p in res["routers"]["knn_k5"]["points"]] == [0.0, 0.01, 1e9]


def test_eval_cross_domain(data_file, tmp_path, cache_dir, capsys):
    out = tmp_path / "cd"
    assert main(["eval", "--data", str(data_file), "--routers", "knn", "--out", str(out), "--encoder", "hash:64", "--cross-domain"]) == 0
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["cross_domain"]["domains"]) == {"chat", "code", "math"}
    assert set(summary["cross_domain"]["mean"]["routers"]) == {"knn_k5", "knn_k10", "knn_k40"}
    for d in ("chat", "code", "math"):
        assert (out / d / "results.json").exists() and (out / d / "cost_quality.png").exists()
    assert "held-out domains" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--routers", "knn,nope"], "unknown router 'nope'"),
        (["--grid", "1,abc"], "--grid"),
        (["--grid", "-1"], "--grid"),
        (["--encoder", "hash:x"], "hash:<dim>"),
        (["--train-data", "x.csv", "--cross-domain"], "exclude each other"),
        (["--members", "1"], "--members"),
        (["--train-config", "no-such.yaml"], "no such file"),
    ],
)
def test_bad_input_exits_2_with_one_line(data_file, tmp_path, cache_dir, capsys, extra, message):
    rc = main(["eval", "--data", str(data_file), "--out", str(tmp_path / "o"), "--encoder", "hash:16", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and len(err.splitlines()) == 1, err


def test_missing_data_file_exits_2(tmp_path, capsys):
    rc = main(["eval", "--data", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "no such data file" in err and len(err.splitlines()) == 1


def test_eval_cross_attention_trains_and_loads_artifact(data_file, tmp_path, cache_dir, capsys):
    out = tmp_path / "ca"
    rc = main(["eval", "--data", str(data_file), "--routers", "knn,cross_attention", "--out", str(out), "--encoder", "hash:64"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert {"cross_attention_linear", "cross_attention_exp"} <= set(res["routers"])
    # A saved artifact is loaded with --artifact, and one trained on another encoder is refused.
    art = tmp_path / "art"
    assert main(["train", "--data", str(data_file), "--out", str(art), "--encoder", "hash:64", "--quiet"]) == 0
    assert main(["eval", "--data", str(data_file), "--routers", "cross_attention", "--out", str(tmp_path / "loaded"),
                 "--encoder", "hash:64", "--artifact", str(art)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["eval", "--data", str(data_file), "--routers", "cross_attention", "--out", str(tmp_path / "bad"),
                 "--encoder", "hash:32", "--artifact", str(art)]) == 2  # fmt: skip
    assert "encoder" in capsys.readouterr().err


def test_eval_seeds_and_bootstrap(data_file, tmp_path, cache_dir, capsys):
    out = tmp_path / "seeds"
    rc = main(["eval", "--data", str(data_file), "--routers", "knn", "--out", str(out), "--encoder", "hash:64",
               "--split", "routerbench", "--seeds", "2", "--bootstrap", "300"])  # fmt: skip
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["seeds"] == [0, 1] and len(res["runs"]) == 2
    # The routerbench split is random: seed run 1 splits with seed 43, so the test sets differ.
    assert res["runs"][0]["routers"]["knn_k5"]["points"] != res["runs"][1]["routers"]["knn_k5"]["points"]
    assert res["bootstrap"]["resamples"] == 300
    printed = capsys.readouterr().out
    assert "mean ± std over 2 seeds" in printed and "paired bootstrap" in printed and "no_router_routerbench" in printed


@pytest.mark.parametrize("extra, message", [(["--seeds", "0"], "--seeds"), (["--bootstrap", "-1"], "--bootstrap")])
def test_bad_seeds_or_bootstrap(data_file, tmp_path, cache_dir, capsys, extra, message):
    rc = main(["eval", "--data", str(data_file), "--out", str(tmp_path / "o"), "--encoder", "hash:16", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err


def test_eval_calibrate_adds_calibrated_rows_and_a_reliability_plot(data_file, tmp_path, cache_dir, capsys):
    out = tmp_path / "cal"
    rc = main(["eval", "--data", str(data_file), "--routers", "svm", "--out", str(out), "--encoder", "hash:64",
               "--calibrate", "isotonic", "--bootstrap", "0"])  # fmt: skip
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["routers"]) == ["svm", "svm+isotonic"]
    assert set(res["calibration"]) == {"svm", "svm+isotonic", "no_router_routerbench"}
    assert all(0 <= c["ece"] <= 1 for c in res["calibration"].values())
    assert (out / "reliability.png").stat().st_size > 1000
    assert "ECE" in capsys.readouterr().out
    assert main(["eval", "--data", str(data_file), "--out", str(tmp_path / "x"), "--encoder", "hash:16", "--calibrate", "platt"]) == 2


def test_eval_reads_a_train_config_for_the_cross_attention_family(data_file, tmp_path, cache_dir):
    cfg = tmp_path / "tc.yaml"
    cfg.write_text("hidden_dim: 8\nmax_epochs: 2\nmodel_repr: profile\nprofile_clusters: 4\nloss: pairwise\n")
    out = tmp_path / "tc"
    assert main(["eval", "--data", str(data_file), "--routers", "cross_attention", "--out", str(out), "--encoder", "hash:64",
                 "--train-config", str(cfg), "--bootstrap", "0"]) == 0  # fmt: skip
    assert "cross_attention_linear" in json.loads((out / "results.json").read_text())["routers"]
