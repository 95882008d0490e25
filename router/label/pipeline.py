"""The ``router label`` run: read and parse the logs (Ray Data, the route-logs readers), quarantine
what cannot be used, pick the rows, fan them out to every model through one async actor of a Ray
Data ``map_batches`` stage, then build the table and the summary from the checkpoint.

Files (``work_dir``, default ``<out without .parquet>.label/``): ``checkpoint/`` (the journals),
``quarantine.jsonl`` (malformed and ungradable log rows), ``failed_cells.jsonl`` (every cell that is
not in the table and why), ``judge_quarantine.jsonl`` (judgments that could not be parsed, raw) and
``label_summary.json``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time

from router.backends import BackendConfig, load_backends
from router.label.assemble import assemble
from router.label.budget import CostEstimator
from router.label.checkpoint import Checkpoint, call_key, grade_key
from router.label.config import LabelConfig
from router.label.rows import LabelRow, select_rows
from router.label.summary import row_accounting

log = logging.getLogger(__name__)

SUMMARY_FILE = "label_summary.json"
QUARANTINE_FILE = "quarantine.jsonl"
FAILED_CELLS_FILE = "failed_cells.jsonl"
JUDGE_QUARANTINE_FILE = "judge_quarantine.jsonl"
CHECKPOINT_DIR = "checkpoint"
# Batches per Ray Data block: the actor works on up to 4 batches of a block at once (Ray Data's
# async default), so a block of several batches keeps the backends busy.
BATCHES_PER_BLOCK = 8


def pool_backends(cfg: LabelConfig) -> dict[str, BackendConfig]:
    pool = load_backends(cfg.backends).by_model()
    if not pool:
        raise ValueError(f"--backends {cfg.backends!r} lists no backends")
    if cfg.models:
        unknown = [m for m in cfg.models if m not in pool]
        if unknown:
            raise ValueError(f"--models: {unknown} not in --backends {cfg.backends!r} (it has {sorted(pool)})")
        pool = {m: pool[m] for m in cfg.models}
    return pool


def _graders(cfg: LabelConfig, rows: list[LabelRow]) -> dict:
    from router.label.graders import make_grader

    # Fingerprints only (no calls are made through these): the judge gets no fanout of its own.
    names = {r.grader for r in rows}
    out = {}
    for name in names:
        if name == "judge":
            from router.label.graders.judge import LLMJudge

            out[name] = LLMJudge(cfg.judge, fanout=None)
        else:
            out[name] = make_grader(name, cfg.grading)
    return out


def _row_done(row: LabelRow, backends, ckpt: Checkpoint, graders, cfg: LabelConfig) -> bool:
    fp = graders[row.grader].fingerprint
    for m, b in backends.items():
        call = ckpt.done_call(call_key(row.messages, b, cfg.max_tokens, cfg.temperature), m)
        if call is None or ckpt.done_grade(grade_key(fp, row.prompt, call["response"], row.reference, row.tests)) is None:
            return False
    return True


def _read_rows(cfg: LabelConfig, quarantine_path: str):
    """(parsed good rows, malformed count): the Ray Data read of route-logs, malformed rows to the quarantine."""
    import pyarrow.fs as pafs

    from router.batch.pipeline import good_rows, parsed_dataset, write_quarantine
    from router.batch.sources import resolve_inputs

    files = resolve_inputs(cfg.input)
    parsed = parsed_dataset(files, cfg.prompt_field, cfg.id_field, cfg.extra_fields())
    n_bad = write_quarantine(parsed, pafs.LocalFileSystem(), quarantine_path)
    good = []
    for batch in parsed.filter(expr=good_rows()).iter_batches(batch_format="pyarrow", batch_size=4096):
        good.extend(batch.to_pylist())
    return files, good, n_bad


def dry_run(cfg: LabelConfig, rows: list[LabelRow], backends, ckpt: Checkpoint, graders) -> dict:
    est = CostEstimator()
    per = {m: {"calls": 0, "max_usd": 0.0, "prompt_usd": 0.0} for m in backends}
    judge = {"calls": 0, "max_usd": 0.0} if cfg.judge is not None else None
    done = 0
    for row in rows:
        if _row_done(row, backends, ckpt, graders, cfg):
            done += 1
            continue
        chars = sum(len(str(m.get("content", ""))) if isinstance(m, dict) else len(str(m)) for m in row.messages)
        fp = graders[row.grader].fingerprint
        for m, b in backends.items():
            call = ckpt.done_call(call_key(row.messages, b, cfg.max_tokens, cfg.temperature), m)
            if call is None:
                per[m]["calls"] += 1
                per[m]["max_usd"] += est.worst_case(b, chars, cfg.max_tokens)
                per[m]["prompt_usd"] += b.observed_cost(est.prompt_tokens(m, chars), 0)
            graded = call is not None and ckpt.done_grade(grade_key(fp, row.prompt, call["response"], row.reference, row.tests))
            if judge is not None and row.grader == "judge" and not graded:
                judge["calls"] += 1
                judge_chars = len(cfg.judge.rubric) + chars + 4 * cfg.max_tokens + len(row.reference or "")
                judge["max_usd"] += 2 * est.worst_case(cfg.judge, judge_chars, cfg.judge.max_tokens)
    total_calls = sum(e["calls"] for e in per.values()) + (judge["calls"] if judge else 0)
    total = sum(e["max_usd"] for e in per.values()) + (judge["max_usd"] if judge else 0.0)
    return {"rows": len(rows), "rows_done": done, "backends": per, "judge": judge, "calls": total_calls,
            "max_usd": total, "max_tokens": cfg.max_tokens, "spent_before_usd": ckpt.spent_usd}  # fmt: skip


def _fan_out(cfg: LabelConfig, backends, todo: list[LabelRow]) -> dict:
    """Run the Ray Data stage over ``todo``; returns the actor's last progress report."""
    import ray
    import ray.data
    from tqdm import tqdm

    from router.label.labeller import LabelActor

    ctx = ray.data.DataContext.get_current()
    # One progress bar (ours, with the spend) instead of Ray Data's per-operator ones.
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    node = ray.get_runtime_context().get_node_id()
    items = [{"row": r.to_json()} for r in todo]
    blocks = max(1, math.ceil(len(items) / (cfg.batch_size * BATCHES_PER_BLOCK)))
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    labelled = ds.map_batches(
        LabelActor,
        fn_constructor_kwargs={
            "cfg_json": cfg.model_dump_json(),
            "backends_json": json.dumps([b.model_dump() for b in backends.values()]),
        },
        batch_size=cfg.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=0.25,  # it waits on the network; leave the CPUs to the read tasks
        # The actor appends to the checkpoint on this machine's disk: keep it on the driver's node.
        label_selector={"ray.io/node-id": node},
    )
    last = {"seq": -1, "progress": {}}
    with tqdm(total=len(items), unit="prompt", desc="router label", disable=not cfg.progress, dynamic_ncols=True) as bar:
        for batch in labelled.iter_batches(batch_size=None, batch_format="numpy"):
            for n, seq, prog in zip(batch["rows"], batch["seq"], batch["progress"]):
                bar.update(int(n))
                if int(seq) > last["seq"]:
                    last = {"seq": int(seq), "progress": json.loads(str(prog))}
                    p = last["progress"]
                    bar.set_postfix_str(f"spent ${p['spent_usd']:.4f}" + (" BUDGET REACHED" if p["budget_exhausted"] else ""))
    return last["progress"]


def _write_jsonl(path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def run_label(cfg: LabelConfig) -> dict:
    """One run (Ray must be initialised). Returns the summary (also written to label_summary.json),
    or the dry run's estimate when ``cfg.dry_run``."""
    started = time.perf_counter()
    backends = pool_backends(cfg)
    work = cfg.work_path
    work.mkdir(parents=True, exist_ok=True)
    quarantine = str(work / QUARANTINE_FILE)
    files, good, n_malformed = _read_rows(cfg, quarantine)
    rows, ungradable, counts = select_rows(good, cfg)
    with open(quarantine, "a", encoding="utf-8") as f:
        for rec in ungradable:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    ckpt = Checkpoint(work / CHECKPOINT_DIR)
    graders = _graders(cfg, rows)
    if cfg.dry_run:
        return dry_run(cfg, rows, backends, ckpt, graders)

    todo = [r for r in rows if not _row_done(r, backends, ckpt, graders, cfg)]
    spent_before = ckpt.spent_usd
    progress = _fan_out(cfg, backends, todo) if todo else {}
    ckpt.load()  # everything, this run's journal included
    table = assemble(rows, backends, ckpt, graders, cfg.max_tokens, cfg.temperature, cfg.max_failed_share)
    out_path = None
    if len(table.frame) and table.models:
        from router.data.table import validate_frame

        validate_frame(table.frame, os.path.basename(cfg.out))  # what router train reads must pass
        out_path = os.path.abspath(os.path.expanduser(cfg.out))
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        tmp = out_path + ".tmp"
        table.frame.to_parquet(tmp, index=False)
        os.replace(tmp, out_path)
    _write_jsonl(work / FAILED_CELLS_FILE, table.failed_cells)
    judged_bad = [{"sample_id": g.get("sample_id"), "model": g.get("model"), "reason": g.get("reason"), "raw": g.get("raw")}
                  for g in ckpt.grades.values() if g.get("reason") == "judge-unparseable"]  # fmt: skip
    _write_jsonl(work / JUDGE_QUARANTINE_FILE, judged_bad)

    judge = dict(table.judge)
    if judge.get("agreement"):
        judge["agreement"]["grader"] = cfg.grading.agreement_grader
    models_usd = ckpt.spent_usd - ckpt.judge_spent_usd
    summary = {
        "input": cfg.input,
        "files": files.count,
        "backends": cfg.backends,
        "models": list(backends),
        "models_in_table": table.models,
        "failed_models": table.failed_models,
        "rows": row_accounting(n_malformed + len(good), n_malformed, counts, len(table.frame), table.dropped_rows),
        "calls": {
            "made": progress.get("calls_made", 0),
            "reused": progress.get("calls_reused", 0),
            "rows_already_done": len(rows) - len(todo),
            "grades_made": progress.get("grades_made", 0),
            "by_backend": progress.get("backends", {}),
            "backends_down": progress.get("down", []),
        },
        "cells": table.cells,
        "answers_without_usage": table.usage_missing,
        "spend": {
            "total_usd": ckpt.spent_usd,
            "this_run_usd": ckpt.spent_usd - spent_before,
            "models_usd": models_usd,
            "judge_usd": ckpt.judge_spent_usd,
            "budget_usd": cfg.budget_usd,
            "budget_reached": bool(progress.get("budget_exhausted", False)),
        },
        "judge": judge if cfg.judge is not None else None,
        "complete": table.dropped_rows == 0 and not table.failed_models,
        "seconds": time.perf_counter() - started,
        "paths": {
            "table": out_path,
            "summary": str(work / SUMMARY_FILE),
            "quarantine": quarantine,
            "failed_cells": str(work / FAILED_CELLS_FILE),
            "judge_quarantine": str(work / JUDGE_QUARANTINE_FILE),
            "checkpoint": str(work / CHECKPOINT_DIR),
        },
    }
    with open(work / SUMMARY_FILE, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary
