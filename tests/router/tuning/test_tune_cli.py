"""`router tune` on the command line: calibration end to end (no Ray), user errors exit 2."""

from __future__ import annotations

import json

import pytest

from router.cli.main import main


@pytest.fixture(scope="module")
def artifact_and_data(tmp_path_factory):
    from router.data.synthetic import make_synthetic_frame, make_synthetic_table
    from router.embeddings.cache import CachedEncoder
    from router.embeddings.hashing import HashingEncoder
    from router.model.artifact import save_artifact
    from router.model.config import TrainConfig
    from router.model.estimator import CrossAttentionPredictor

    base = tmp_path_factory.mktemp("cli")
    table = make_synthetic_table(n=200, seed=3)
    encoder = CachedEncoder(HashingEncoder(64), cache_dir=base / "cache")
    cfg = TrainConfig(hidden_dim=16, max_epochs=15, batch_size=32, init_from_names=False, num_threads=1)
    predictor = CrossAttentionPredictor(cfg).fit(encoder.embed(table.prompts), table.quality, table.cost, table.models)
    art = save_artifact(predictor, base / "router", encoder_name=encoder.name, encoder_dim=encoder.dim)
    data = base / "unseen.parquet"
    make_synthetic_frame(n=200, seed=4).to_parquet(data)  # other prompts than the training ones
    return str(art), str(data), str(base / "cache")


def test_calibrate_budget_from_the_cli(artifact_and_data, tmp_path, capsys):
    art, data, cache = artifact_and_data
    code = main(["tune", "--calibrate", "--artifact", art, "--data", data, "--split", "all", "--budget", "0.4",
                 "--cache-dir", cache, "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    res = json.loads((tmp_path / "calibration.json").read_text())
    assert res["feasible"] and res["calibration"]["cost_per_1000"] <= 0.4
    assert f"λ = {res['lambda']:.6g}" in out and "held-out" in out


def test_cli_user_errors_exit_2(artifact_and_data, tmp_path, capsys):
    art, data, cache = artifact_and_data
    assert main(["tune", "--calibrate", "--artifact", art, "--data", data, "--split", "all"]) == 2
    assert "exactly one of --budget" in capsys.readouterr().err
    assert main(["tune", "--data", data, "--out", str(tmp_path), "--variants", "nope"]) == 2
    assert "--variants" in capsys.readouterr().err
    assert main(["route-logs", "--artifact", art, "--input", data, "--out", str(tmp_path / "o"), "--lambda", "1,x"]) == 2
    assert "--lambda" in capsys.readouterr().err
    assert main(["route-logs", "--artifact", str(tmp_path / "none"), "--input", data, "--out", str(tmp_path / "o")]) == 2
    assert "--artifact" in capsys.readouterr().err
    assert main(["route-logs", "--artifact", art, "--input", data, "--out", str(tmp_path / "o"), "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err
