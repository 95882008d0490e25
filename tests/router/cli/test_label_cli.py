"""``router label`` end to end on the stand-in backend (a TEST DOUBLE playing three pool models of
different skill per task, and a judge): logs -> ``router label`` -> ``router data validate`` ->
``router train`` -> the trained router prefers, on each task, the model the stand-in made better."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from router.cli.main import main
from serve_app.testing import label_demo
from serve_app.testing.stub_backend import Behaviour, StubBackend, load_answer_key

pytestmark = pytest.mark.ray
N_ROWS = 150  # 50 prompts per task: enough for a model-free encoder to tell the tasks apart
# The model-free hashing encoder, wide enough that three tasks' vocabularies do not collide much.
ENCODER = "hash:512"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    """Logs of bundled prompts (with malformed rows), the stand-in started with them as its answer key."""
    logs = label_demo.write_logs(tmp_path / "logs.jsonl", label_demo.demo_log_rows(N_ROWS))
    stub = StubBackend(Behaviour(skills=label_demo.SKILLS, answer_key=load_answer_key(str(logs), "messages", "task"),
                                 default_latency_ms=(2, 10)))  # fmt: skip
    stub.start_in_thread()
    files = {"logs": logs, "backends": label_demo.write_backends(tmp_path / "backends.yaml", stub.port),
             "judge": label_demo.write_judge(tmp_path / "judge.yaml", stub.port), "out": tmp_path / "tables" / "mine.parquet"}  # fmt: skip
    yield stub, files
    stub.stop_thread()


def _label_args(files, *extra):
    return ["label", "--input", str(files["logs"]), "--prompt-field", "messages", "--eval-field", "task",
            "--backends", str(files["backends"]), "--judge", str(files["judge"]), "--out", str(files["out"]),
            "--max-tokens", "16", "--concurrency", "16", "--no-progress", *extra]  # fmt: skip


def test_logs_to_label_to_train_prefers_the_better_model_per_task(demo, tmp_path, ray_session, cache_dir, capsys):
    stub, files = demo
    assert main(_label_args(files)) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "tables" / "mine.label" / "label_summary.json").read_text())
    rows = summary["rows"]
    assert rows["read"] == N_ROWS + 3 and rows["quarantined"] == 3 and rows["labelled"] == N_ROWS
    assert rows["read"] == rows["labelled"] + rows["quarantined"] and rows["balanced"]
    assert len((tmp_path / "tables" / "mine.label" / "quarantine.jsonl").read_text().splitlines()) == 3
    assert summary["calls"]["made"] == N_ROWS * 3 and summary["spend"]["models_usd"] > 0 and summary["spend"]["judge_usd"] > 0
    assert f"labelled {N_ROWS}, quarantined 3" in printed
    assert max(stub.answered.values()) == 1  # no (model, prompt) answered twice, judgments included

    assert main(["data", "validate", str(files["out"])]) == 0
    assert f"OK: mine: {N_ROWS} rows, 3 models" in capsys.readouterr().out

    cfg = tmp_path / "train.yaml"
    cfg.write_text("hidden_dim: 32\nmax_epochs: 60\npatience: 60\nbatch_size: 16\ninit_from_names: false\nval_fraction: 0.2\n")
    art = tmp_path / "router"
    assert main(["train", "--data", str(files["out"]), "--out", str(art), "--encoder", ENCODER, "--split", "all",
                 "--config", str(cfg), "--cache-dir", str(cache_dir), "--quiet"]) == 0  # fmt: skip

    # Fresh prompts of the same tasks (not in the training logs): the router's predicted quality.
    from router.embeddings import make_encoder
    from router.model.artifact import load_artifact

    seen = {r["id"] for r in label_demo.demo_log_rows(N_ROWS)}
    fresh = [r for r in label_demo.demo_log_rows(300, seed=7) if r["id"] not in seen]
    loaded = load_artifact(art)
    enc = make_encoder(ENCODER, cache_dir=cache_dir)
    pred = loaded.predictor.predict(np.asarray(enc.embed([r["messages"][0]["content"] for r in fresh]), dtype=np.float32))
    models = list(loaded.models)
    for task in label_demo.TASKS:
        sel = np.array([r["task"] == task for r in fresh])
        best = max(label_demo.SKILLS, key=lambda m: label_demo.SKILLS[m][task])
        assert models[int(np.argmax(pred.quality[sel].mean(axis=0)))] == best, task


def test_dry_run_counts_calls_and_calls_nothing(demo, ray_session, capsys):
    stub, files = demo
    assert main(_label_args(files, "--dry-run", "--sample", "12", "--stratify-by", "task")) == 0
    out = capsys.readouterr().out
    assert "dry run: 12 prompts to label" in out and "total: 72 calls" in out  # 36 answers + 36 judgments
    assert sum(stub.calls.values()) == 0
    assert not files["out"].exists()


def test_a_backend_that_is_down_is_marked_failed_and_the_run_completes(demo, tmp_path, ray_session, capsys):
    stub, files = demo
    label_demo.write_backends(files["backends"], stub.port, down=("gamma-70b",), down_port=_closed_port())
    assert main(_label_args(files, "--sample", "12", "--stratify-by", "task", "--max-attempts", "2")) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "tables" / "mine.label" / "label_summary.json").read_text())
    assert list(summary["failed_models"]) == ["gamma-70b"] and summary["models_in_table"] == ["alpha-8b", "beta-32b"]
    assert summary["cells"]["gamma-70b"]["ok"] == 0 and sum(summary["cells"]["gamma-70b"]["failed"].values()) == 12
    assert summary["rows"]["labelled"] == 12 and summary["rows"]["not_sampled"] == N_ROWS - 12 and summary["rows"]["balanced"]
    assert "gamma-70b: 0 labelled" in out and "COLUMN LEFT OUT" in out
    assert main(["data", "validate", str(files["out"])]) == 0


def test_bad_options_are_one_line_errors(demo, capsys):
    _, files = demo
    assert main(["label", "--input", str(files["logs"]), "--backends", str(files["backends"]), "--out", "x.csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("router label: error: --out") and "parquet" in err
    assert main(["label", "--input", str(files["logs"]), "--backends", str(files["backends"]), "--out", "x.parquet"]) == 2
    assert "no way to grade" in capsys.readouterr().err
    assert main(["label", "--input", str(files["logs"]), "--backends", str(files["backends"]), "--out", "x.parquet",
                 "--grader", "numeric"]) == 2  # fmt: skip
    assert "--reference-field" in capsys.readouterr().err
