"""``router train`` end to end on a tiny table with the model-free hashing encoder."""

import pytest

from router.cli.main import main
from router.model.artifact import load_artifact


@pytest.fixture
def tiny_csv(tmp_path):
    from router.data.synthetic import make_synthetic_frame

    path = tmp_path / "tiny.csv"
    make_synthetic_frame(n=90, seed=0).to_csv(path, index=False)
    return path


def test_train_writes_a_loadable_artifact(tiny_csv, tmp_path, cache_dir, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("hidden_dim: 16\nmax_epochs: 3\n")
    out = tmp_path / "artifact"
    code = main(["train", "--data", str(tiny_csv), "--out", str(out), "--config", str(cfg), "--encoder", "hash:32", "--seed", "5", "--cache-dir", str(cache_dir)])
    assert code == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "epoch   1" in captured.err
    art = load_artifact(out, expect_encoder="hash:32", expect_models=("small", "medium", "large"), expect_dim=32)
    assert art.config.hidden_dim == 16 and art.config.seed == 5
    assert art.extra["n_train"] < 90  # the train half of the split only


@pytest.mark.parametrize(
    "text, field",
    [("hidden_dim: 16\nlearning_rate: 0.1\n", "learning_rate"), ("lr: -0.5\n", "lr"), ("variant: sideways\n", "variant")],
)
def test_bad_config_is_a_one_line_error(tiny_csv, tmp_path, capsys, text, field):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    code = main(["train", "--data", str(tiny_csv), "--out", str(tmp_path / "o"), "--config", str(cfg), "--encoder", "hash:32"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("router train: error:") and field in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_missing_config_file(tiny_csv, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_csv), "--out", str(tmp_path / "o"), "--config", str(tmp_path / "none.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_train_ensemble_writes_an_uncertainty_aware_artifact(tiny_csv, tmp_path, cache_dir, capsys):
    from router.model.ensemble import EnsemblePredictor

    cfg = tmp_path / "train.yaml"
    cfg.write_text("hidden_dim: 8\nmax_epochs: 2\n")
    out = tmp_path / "ens"
    code = main(["train", "--data", str(tiny_csv), "--out", str(out), "--config", str(cfg), "--encoder", "hash:32",
                 "--ensemble", "2", "--domain-folds", "1", "--cache-dir", str(cache_dir), "--quiet"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "ensemble of 2" in captured.err and "chosen on folds ['random', 'domain" in captured.out
    art = load_artifact(out, expect_encoder="hash:32")
    assert isinstance(art.predictor, EnsemblePredictor) and len(art.predictor.members_) == 2


@pytest.mark.parametrize("argv, field", [(["--ensemble", "1"], "--ensemble"), (["--ensemble", "99"], "--ensemble"),
                                         (["--ensemble", "2", "--domain-folds", "-1"], "--domain-folds")])  # fmt: skip
def test_bad_ensemble_options_are_one_line_errors(tiny_csv, tmp_path, capsys, argv, field):
    code = main(["train", "--data", str(tiny_csv), "--out", str(tmp_path / "o"), "--encoder", "hash:32", *argv])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("router train: error:") and field in err and "\n" not in err
