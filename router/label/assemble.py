"""The routing table from the selected rows and the checkpoint.

A cell (row, model) is labelled when the model's call succeeded and its answer was graded. Cells
that are not — the call failed, the grade failed (a quarantined judgment), or the budget stopped
the run first — are never written as a score (a 0 would teach the router that the model was wrong,
a NaN would make the table invalid). Instead:

* a model whose share of failed cells (among the cells that were tried) exceeds
  ``max_failed_share`` is left out of the table: its column failed (a backend that was down);
* then every row with a cell that is still not labelled is left out;

and both are listed in ``failed_cells.jsonl`` and counted in the summary. What is written holds
only real answers, real costs and real grades, and passes ``router data validate``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from router.backends import BackendConfig
from router.data.table import COST_SUFFIX, RESPONSE_SUFFIX
from router.label.checkpoint import Checkpoint, call_key, grade_key
from router.label.rows import LabelRow

COST_SOURCE_SUFFIX = "|cost_source"  # "usage" or "estimate" (the answer carried no usage)
NOT_CALLED = "not-called-budget"
NOT_GRADED = "not-graded-budget"


@dataclass
class Assembled:
    frame: pd.DataFrame
    models: list[str]  # the models in the table
    failed_models: dict[str, float] = field(default_factory=dict)  # left out: model -> failed share
    cells: dict[str, dict] = field(default_factory=dict)  # model -> {"ok": n, "failed": {reason: n}, "missing": {reason: n}}
    failed_cells: list[dict] = field(default_factory=list)
    dropped_rows: int = 0
    judge: dict = field(default_factory=dict)
    usage_missing: dict[str, int] = field(default_factory=dict)


def _judge_stats(grades: list[dict]) -> dict:
    judged = list({g["key"]: g for g in grades if g.get("grader") == "judge"}.values())  # a shared judgment once
    both = [g for g in judged if g.get("score") is not None and g.get("reference_score") is not None]
    out = {
        "grades": len(judged),
        "quarantined_unparseable": sum(g.get("reason") == "judge-unparseable" for g in judged),
        "failed_calls": sum(str(g.get("reason", "")).startswith("judge-") and g.get("reason") != "judge-unparseable" for g in judged),
        "retried_judgments": sum(int(g.get("calls") or 0) > 1 for g in judged),
        "cost_usd": sum(float(g.get("cost") or 0.0) for g in judged),
        "agreement": None,
    }
    if both:
        agree = sum((g["score"] >= 0.5) == (g["reference_score"] >= 0.5) for g in both)
        out["agreement"] = {
            "rows_with_reference": len(both),
            "share_agreeing": agree / len(both),
            "mean_abs_difference": sum(abs(g["score"] - g["reference_score"]) for g in both) / len(both),
        }
    return out


def assemble(rows: list[LabelRow], backends: dict[str, BackendConfig], ckpt: Checkpoint, graders: dict,
             max_tokens: int, temperature: float, max_failed_share: float) -> Assembled:  # fmt: skip
    """``graders``: name -> grader (for its fingerprint)."""
    models = list(backends)
    state: dict[tuple[int, str], tuple[str, object]] = {}  # (row, model) -> ("ok", (score, call)) | ("failed"|"missing", reason)
    cells = {m: {"ok": 0, "failed": Counter(), "missing": Counter()} for m in models}
    usage_missing = Counter()
    grades_seen = []
    for i, row in enumerate(rows):
        fingerprint = graders[row.grader].fingerprint
        for m in models:
            ckey = call_key(row.messages, backends[m], max_tokens, temperature)
            call = ckpt.done_call(ckey, m)
            if call is None:
                failed = ckpt.failed_calls.get((ckey, m))
                state[i, m] = ("failed", failed["reason"]) if failed else ("missing", NOT_CALLED)
            else:
                gkey = grade_key(fingerprint, row.prompt, call["response"], row.reference, row.tests)
                grade = ckpt.done_grade(gkey) or ckpt.failed_grades.get(gkey)
                if grade is not None:
                    grades_seen.append(grade)
                if grade is None:
                    state[i, m] = ("missing", NOT_GRADED)
                elif grade.get("score") is None:
                    state[i, m] = ("failed", grade.get("reason") or "grade-failed")
                else:
                    state[i, m] = ("ok", (float(grade["score"]), call))
            kind, value = state[i, m]
            if kind == "ok":
                cells[m]["ok"] += 1
            else:
                cells[m][kind][value] += 1
    failed_models = {}
    for m in models:
        tried = cells[m]["ok"] + sum(cells[m]["failed"].values())
        share = sum(cells[m]["failed"].values()) / tried if tried else 0.0
        if tried and share > max_failed_share:
            failed_models[m] = share
    kept = [m for m in models if m not in failed_models]
    records, failed_cells, dropped = [], [], 0
    for i, row in enumerate(rows):
        for m in models:
            kind, value = state[i, m]
            if kind != "ok":
                failed_cells.append({"sample_id": row.sample_id, "model": m, "state": kind, "reason": value,
                                     "column_left_out": m in failed_models})  # fmt: skip
        if not kept or any(state[i, m][0] != "ok" for m in kept):
            dropped += 1
            continue
        rec = {"sample_id": row.sample_id, "prompt": row.prompt, "eval_name": row.eval_name}
        for m in kept:
            score, call = state[i, m][1]
            rec[m] = score
            rec[m + COST_SUFFIX] = float(call["cost"])
            rec[m + RESPONSE_SUFFIX] = call["response"]
            rec[m + COST_SOURCE_SUFFIX] = call["cost_source"]
            if call["cost_source"] != "usage":
                usage_missing[m] += 1
        records.append(rec)
    columns = ["sample_id", "prompt", "eval_name"] + [
        c for m in kept for c in (m, m + COST_SUFFIX, m + RESPONSE_SUFFIX, m + COST_SOURCE_SUFFIX)
    ]
    frame = pd.DataFrame.from_records(records, columns=columns)
    cells_out = {m: {"ok": c["ok"], "failed": dict(c["failed"]), "missing": dict(c["missing"])} for m, c in cells.items()}
    return Assembled(frame, kept, failed_models, cells_out, failed_cells, dropped, _judge_stats(grades_seen), dict(usage_missing))
