"""Labelling without Ray (the asyncio core the Ray actor runs): the budget stop, resuming without
repeating a call (counted by the stand-in backend, a TEST DOUBLE), an interrupted run, a judge that
answers prose, and how failed cells stay out of the table."""

from __future__ import annotations

import asyncio
from pathlib import Path

from router.batch.sources import parse_jsonl_file
from router.data.table import validate_frame
from router.label.assemble import assemble
from router.label.checkpoint import Checkpoint
from router.label.config import LabelConfig, load_judge
from router.label.labeller import Labeller
from router.label.pipeline import _graders, pool_backends
from router.label.rows import select_rows


def _setup(tmp_path: Path, logs: Path, files: dict, **overrides):
    cfg = LabelConfig(input=str(logs), backends=str(files["backends"]), out=str(tmp_path / "t.parquet"),
                      judge=load_judge(files["judge"]), prompt_field="messages", eval_field="task", max_tokens=16,
                      backoff_s=0.01, progress=False, **overrides)  # fmt: skip
    parsed = [r for r in parse_jsonl_file(logs.read_bytes(), str(logs), "messages", "id", cfg.extra_fields()) if not r["error"]]
    rows, _, _ = select_rows(parsed, cfg)
    return cfg, rows, pool_backends(cfg)


def _label(cfg, rows, backends, stop_when=None, after_stop=None):
    """Label ``rows``; with ``stop_when`` (a predicate), stop the run once it holds (an interrupt:
    ``Labeller.stop``), call ``after_stop`` and wait for the calls already sent."""

    async def go():
        lab = Labeller(cfg, backends)
        task = asyncio.ensure_future(lab.label_rows(rows))
        try:
            if stop_when is not None:
                while not stop_when() and not task.done():
                    await asyncio.sleep(0.01)
                lab.stop()
                if after_stop is not None:
                    after_stop()
            await task
            return lab.progress()
        finally:
            await lab.close()

    return asyncio.run(go())


def _table(cfg, rows, backends):
    ckpt = Checkpoint(cfg.work_path / "checkpoint")
    return assemble(rows, backends, ckpt, _graders(cfg, rows), cfg.max_tokens, cfg.temperature, cfg.max_failed_share)


def _answered_once(stub, models):
    paid = {k: n for k, n in stub.answered.items() if k[0] in models}
    return paid and max(paid.values()) == 1


def test_budget_stop_then_resume_pays_no_call_twice(tmp_path, logs, skilled_stub, label_files):
    cfg, rows, backends = _setup(tmp_path, logs, label_files, budget_usd=0.0015)
    first = _label(cfg, rows, backends)
    assert first["budget_exhausted"] and 0 < first["spent_usd"] <= 0.0015  # stopped before exceeding
    done_first = first["calls_made"]
    assert 0 < done_first < len(rows) * len(backends)
    assert len(_table(cfg, rows, backends).frame) < len(rows)

    again = _label(cfg.model_copy(update={"budget_usd": 1.0}), rows, backends)
    assert not again["budget_exhausted"]
    assert again["calls_made"] == len(rows) * len(backends) - done_first and again["calls_reused"] >= done_first
    assert _answered_once(skilled_stub, backends)  # every (model, prompt) answered exactly once
    table = _table(cfg, rows, backends)
    assert len(table.frame) == len(rows) and table.dropped_rows == 0
    validate_frame(table.frame)


def test_interrupted_run_resumes_without_repeating_a_paid_call(tmp_path, logs, skilled_stub, label_files):
    cfg, rows, backends = _setup(tmp_path, logs, label_files)
    skilled_stub.behaviour.pause_after_answers = 10  # then the backends hang: the run is interrupted mid-call
    first = _label(cfg, rows, backends,
                   stop_when=lambda: skilled_stub.answered_total >= 10 and sum(skilled_stub.in_flight.values()) > 0,
                   after_stop=lambda: skilled_stub.set_paused(False))  # fmt: skip
    # The calls that were already sent got their (paid) answers and are journaled; nothing new was sent.
    assert sum(skilled_stub.in_flight.values()) == 0
    paid = sum(n for (model, _), n in skilled_stub.answered.items() if model in backends)
    assert first["calls_made"] == paid < len(rows) * len(backends)
    second = _label(cfg, rows, backends)
    assert _answered_once(skilled_stub, backends)  # every (model, prompt) answered, and paid, once
    assert second["calls_reused"] >= first["calls_made"] > 0
    assert len(_table(cfg, rows, backends).frame) == len(rows)


def test_unparseable_judgments_are_quarantined_not_scored(tmp_path, logs, skilled_stub, label_files):
    cfg, rows, backends = _setup(tmp_path, logs, label_files, models=["alpha-8b"])  # one cell: one judgment at a time
    skilled_stub.behaviour.judge_garbage = 2  # the judgment and its retry are prose
    _label(cfg, rows[:1], backends)
    table = _table(cfg, rows[:1], backends)
    assert len(table.frame) == 0 and table.dropped_rows == 1  # the row is not in the table with a made-up 0
    assert table.judge["quarantined_unparseable"] == 1
    failed = [c for c in table.failed_cells if c["reason"] == "judge-unparseable"]
    assert len(failed) == 1
    # A re-run does not ask the judge about that answer again (it was paid for twice already).
    judge_calls = skilled_stub.stats.get("stub-judge", 0)
    _label(cfg, rows[:1], backends)
    assert skilled_stub.stats.get("stub-judge", 0) == judge_calls


def test_a_mostly_failed_model_column_is_left_out(tmp_path, logs, skilled_stub, label_files):
    cfg, rows, backends = _setup(tmp_path, logs, label_files, max_attempts=1)
    skilled_stub.behaviour.fail = {"gamma-70b": 503}
    try:
        _label(cfg, rows, backends)
    finally:
        skilled_stub.behaviour.fail = {}
    table = _table(cfg, rows, backends)
    assert list(table.failed_models) == ["gamma-70b"] and table.models == ["alpha-8b", "beta-32b"]
    assert len(table.frame) == len(rows) and "gamma-70b" not in table.frame.columns
    assert table.cells["gamma-70b"]["failed"] == {"http-503": len(rows)}
    validate_frame(table.frame)
