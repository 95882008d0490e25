"""Labelling rows: every model's answer (unless the checkpoint has it), then its grade, journaled as
they come. ``Labeller`` is plain asyncio (tests drive it directly); ``LabelActor`` runs it inside
the Ray Data pipeline as an async ``map_batches`` UDF.

One actor makes every call of a run. The work is waiting on the network, which one event loop does
for hundreds of requests at once; and with a single caller the per-backend concurrency and rate
limits and the budget are exact rather than split between processes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Optional

from router.backends import BackendConfig
from router.label.budget import Budget
from router.label.checkpoint import Checkpoint, call_key, grade_key
from router.label.config import LabelConfig
from router.label.fanout import BUDGET, INTERRUPTED, Fanout
from router.label.graders import GradeItem, make_grader
from router.label.graders.judge import JUDGE_NAME
from router.label.rows import LabelRow


class Labeller:
    def __init__(self, cfg: LabelConfig, backends: dict[str, BackendConfig], checkpoint: Optional[Checkpoint] = None):
        self.cfg = cfg
        self.models = list(backends)
        self.backends = backends
        self.checkpoint = checkpoint or Checkpoint(cfg.work_path / "checkpoint")
        self.budget = Budget(cfg.budget_usd, self.checkpoint.spent_usd)
        callers = dict(backends)
        limits = {m: cfg.limits_for(m) for m in backends}
        if cfg.judge is not None:
            from router.label.config import BackendLimits

            callers[JUDGE_NAME] = cfg.judge
            limits[JUDGE_NAME] = BackendLimits(concurrency=cfg.judge.concurrency, rpm=cfg.judge.rpm)
        self.fanout = Fanout(
            callers, limits, self.budget, timeout_s=cfg.timeout_s, max_attempts=cfg.max_attempts, backoff_s=cfg.backoff_s,
            max_backoff_s=cfg.max_backoff_s, max_consecutive_failures=cfg.max_consecutive_failures, seed=cfg.seed,
        )  # fmt: skip
        self._graders: dict[str, object] = {}
        self._in_flight: dict[tuple[str, str], asyncio.Future] = {}
        self.calls_made = 0
        self.calls_reused = 0
        self.grades_made = 0

    def grader(self, name: str):
        if name not in self._graders:
            self._graders[name] = make_grader(name, self.cfg.grading, self.cfg.judge, self.fanout)
        return self._graders[name]

    async def _cell(self, row: LabelRow, model: str) -> None:
        ckey = call_key(row.messages, self.backends[model], self.cfg.max_tokens, self.cfg.temperature)
        call = self.checkpoint.done_call(ckey, model)
        if call is None:
            # Two rows with the same messages (dedup off) share one call rather than paying twice.
            task = self._in_flight.get((ckey, model))
            if task is None:
                task = self._in_flight[(ckey, model)] = asyncio.ensure_future(self._call(row, model, ckey))
            try:
                call = await task
            finally:
                self._in_flight.pop((ckey, model), None)
            if call is None or call["status"] != "ok":
                return
        else:
            self.calls_reused += 1
        grader = self.grader(row.grader)
        gkey = grade_key(grader.fingerprint, row.prompt, call["response"], row.reference, row.tests)
        if self.checkpoint.done_grade(gkey) is not None:
            return
        # Models that gave the same answer share one grade (and one paid judgment).
        task = self._in_flight.get(("grade", gkey))
        if task is None:
            task = self._in_flight[("grade", gkey)] = asyncio.ensure_future(self._grade(row, model, grader, gkey, call))
        try:
            await task
        finally:
            self._in_flight.pop(("grade", gkey), None)

    async def _grade(self, row: LabelRow, model: str, grader, gkey: str, call: dict) -> None:
        ckey = call["key"]
        item = GradeItem(row.prompt, call["response"], row.reference, row.tests)
        grade = await grader.grade(item)
        if grade.reason == INTERRUPTED or (grade.reason == BUDGET and grade.cost == 0):
            return  # not graded: a later run grades it (an interrupted judge retry is paid again then)
        rec = {"kind": "grade", "key": gkey, "call_key": ckey, "sample_id": row.sample_id, "model": model,
               "grader": grader.name, "score": grade.score, "reason": grade.reason, "cost": grade.cost,
               "raw": grade.raw[:2000], "calls": grade.calls}  # fmt: skip
        if grader.name == "judge" and row.reference:
            # Judge agreement (summary): the reference grader's verdict on the same answer.
            ref = await self.grader(self.cfg.grading.agreement_grader).grade(item)
            rec["reference_score"] = ref.score
        self.grades_made += 1
        self.checkpoint.append(rec)

    async def _call(self, row: LabelRow, model: str, ckey: str) -> Optional[dict]:
        out = await self.fanout.call(model, row.messages, self.cfg.max_tokens, self.cfg.temperature)
        if out.status == "skipped":
            return None
        self.calls_made += 1
        call = {"kind": "call", "key": ckey, "sample_id": row.sample_id, **out.record()}
        self.checkpoint.append(call)
        return call

    def stop(self) -> None:
        """Stop sending calls; the ones already sent run to their answer and are journaled, so the
        next run pays for none of them again. ``label_rows`` then returns once they are in."""
        self.fanout.stop()

    async def label_row(self, row: LabelRow) -> None:
        await asyncio.gather(*(self._cell(row, m) for m in self.models))

    async def label_rows(self, rows: list[LabelRow]) -> None:
        await asyncio.gather(*(self.label_row(r) for r in rows))
        self.checkpoint.sync()

    def progress(self) -> dict:
        return {
            "calls_made": self.calls_made, "calls_reused": self.calls_reused, "grades_made": self.grades_made,
            "spent_usd": self.budget.spent, "spent_run_usd": self.budget.spent_run,
            "budget_exhausted": self.budget.exhausted, "budget_refused": self.budget.refused,
            "backends": self.fanout.stats_report(), "down": sorted(self.fanout.down),
        }  # fmt: skip

    async def close(self) -> None:
        await self.fanout.close()
        self.checkpoint.close()


class LabelActor:
    """The Ray Data UDF: labels a batch of rows (a ``row`` column of ``LabelRow`` JSON) and returns one
    progress row (this actor's running totals) per batch."""

    def __init__(self, cfg_json: str, backends_json: str):
        cfg = LabelConfig.model_validate_json(cfg_json)
        backends = {b["model"]: BackendConfig.model_validate(b) for b in json.loads(backends_json)}
        self.labeller = Labeller(cfg, backends)
        self.seq = 0

    async def __call__(self, batch: dict) -> dict:
        import numpy as np

        rows = [LabelRow.from_json(str(t)) for t in batch["row"]]
        await self.labeller.label_rows(rows)
        self.seq += 1
        return {"rows": np.array([len(rows)]), "seq": np.array([self.seq]), "progress": np.array([json.dumps(self.labeller.progress())])}
