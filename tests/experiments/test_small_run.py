"""``python -m experiments --small``: every part of the comparison runs end to end at test size, so
the research scripts cannot silently break again (hash encoder, 400 rows, 2 epochs)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_every_part_runs_at_small_size(tmp_path, cache_dir, capsys):
    from experiments.compare import main

    assert main(["--small", "--out", str(tmp_path), "--datasets", "dcrouter,routellm"]) == 0
    for name in ("dcrouter", "routellm"):
        res = json.loads((tmp_path / name / "in_distribution" / "results.json").read_text())
        assert {"cross_attention_linear", "cross_attention_exp", "knn_k40", "svm"} <= set(res["routers"])
        cross = json.loads((tmp_path / name / "cross_domain" / "results.json").read_text())["cross_domain"]
        assert len(cross["domains"]) >= 2 and "cross_attention_linear" in cross["mean"]["routers"]
        assert (tmp_path / name / "reward_stability.png").stat().st_size > 0
        assert "prompt_queries" in json.loads((tmp_path / name / "ablation.json").read_text())["variants"]
    extend = json.loads((tmp_path / "dcrouter" / "extend.json").read_text())
    assert len(extend["models"]) == 2  # routellm has 2 models: nothing to hold out
    for x in extend["models"].values():  # add_model and the gradient-free profile placement, same 100 prompts
        assert {"added_100", "placed_100_profile", "profile_without_model"} <= set(x)
    assert "KNN k=40 (routerbench reward)" in json.loads((tmp_path / "selection.json").read_text())["rows"]
    tables = (tmp_path / "tables.md").read_text()
    assert "**dcrouter, in-distribution (test split)**" in tables and "How the defaults were chosen" in tables
