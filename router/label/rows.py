"""From parsed log rows to the rows to label: the grader of each row (rows that cannot be graded
are quarantined before any call is paid for them), dedup on the prompt text, and a seeded sample
(stratified by a field when asked: each value keeps its share, largest remainders round up)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable, Optional

import numpy as np

from router.label.config import GRADERS, REFERENCE_GRADERS, UNLABELLED, LabelConfig


@dataclass
class LabelRow:
    sample_id: str
    prompt: str  # the text the router embeds (router.messages.prompt_text)
    eval_name: str
    messages: list  # what is sent: the logged messages as they are, or one user turn with the prompt
    grader: str
    reference: Optional[str] = None
    tests: Optional[str] = None
    stratum: str = ""
    source: str = ""
    line: int = -1

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "LabelRow":
        return cls(**json.loads(text))


def _text(value) -> Optional[str]:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def to_label_row(parsed: dict, cfg: LabelConfig) -> tuple[Optional[LabelRow], str]:
    """A parsed good row as a ``LabelRow``, or (None, reason) when it cannot be graded."""
    fields = json.loads(parsed.get("fields") or "{}")
    g = cfg.grading
    eval_name = _text(fields.get(cfg.eval_field)) if cfg.eval_field else None
    eval_name = eval_name if eval_name and eval_name.strip() else UNLABELLED
    grader = _text(fields.get(g.grader_field)) if g.grader_field else None
    if grader is not None and grader not in GRADERS:
        return None, f"field {g.grader_field!r}: unknown grader {grader!r} (choose from {', '.join(GRADERS)})"
    grader = grader or g.task_graders.get(eval_name) or g.grader
    if grader is None:
        return None, f"no grader: field {g.grader_field!r} is missing and no default grader is set"
    reference = _text(fields.get(g.reference_field)) if g.reference_field else None
    tests = _text(fields.get(g.tests_field)) if g.tests_field else None
    if grader in REFERENCE_GRADERS and (reference is None or not reference.strip()):
        return None, f"grader {grader!r} needs a reference answer in field {g.reference_field!r}"
    if grader == "code" and not tests:
        return None, f"grader 'code' needs tests in field {g.tests_field!r}"
    if grader == "judge" and cfg.judge is None:
        return None, "grader 'judge' asked for but no --judge is configured"
    raw = fields.get(cfg.prompt_field)
    messages = raw if isinstance(raw, list) else [{"role": "user", "content": parsed["prompt"]}]
    stratum = _text(fields.get(cfg.stratify_by)) or "" if cfg.stratify_by else ""
    row = LabelRow(str(parsed["id"]), parsed["prompt"], eval_name, messages, grader, reference, tests, stratum,
                   parsed.get("source", ""), int(parsed.get("line", -1)))  # fmt: skip
    return row, ""


def stratified_sample(rows: list[LabelRow], n: int, seed: int, by_stratum: bool) -> list[LabelRow]:
    """``n`` rows drawn without replacement (all of them when there are fewer), in input order."""
    if n >= len(rows):
        return rows
    rng = np.random.default_rng(seed)
    if not by_stratum:
        keep = np.sort(rng.choice(len(rows), size=n, replace=False))
        return [rows[i] for i in keep]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[r.stratum].append(i)
    names = sorted(groups)
    exact = np.array([n * len(groups[s]) / len(rows) for s in names])
    quota = np.floor(exact).astype(int)
    order = np.argsort(-(exact - quota), kind="stable")  # largest remainders get the rows left over
    for j in order[: n - int(quota.sum())]:
        quota[j] += 1
    keep = []
    for s, q in zip(names, quota):
        idx = groups[s]
        keep.extend(idx[k] for k in rng.choice(len(idx), size=int(q), replace=False))
    return [rows[i] for i in sorted(keep)]


def select_rows(parsed_rows: Iterable[dict], cfg: LabelConfig) -> tuple[list[LabelRow], list[dict], dict]:
    """(rows to label, quarantine records of ungradable rows, counts)."""
    good = sorted(parsed_rows, key=lambda r: (r.get("source", ""), int(r.get("line", -1))))
    rows, ungradable = [], []
    for parsed in good:
        row, reason = to_label_row(parsed, cfg)
        if row is None:
            line = int(parsed.get("line", -1))
            ungradable.append({"id": parsed.get("id") or None, "source": parsed.get("source", ""),
                               "line": line if line >= 0 else None, "reason": reason, "raw": ""})  # fmt: skip
        else:
            rows.append(row)
    duplicates = 0
    if cfg.dedup:
        seen: set[str] = set()
        unique = []
        for r in rows:
            if r.prompt in seen:
                duplicates += 1
                continue
            seen.add(r.prompt)
            unique.append(r)
        rows = unique
    # Ids must be unique in the table: a repeated id (the same id in two files) gets a suffix.
    used: set[str] = set()
    for r in rows:
        sid, k = r.sample_id, 1
        while sid in used:
            k += 1
            sid = f"{r.sample_id}#{k}"
        r.sample_id = sid
        used.add(sid)
    unique_rows = len(rows)
    if cfg.sample is not None:
        rows = stratified_sample(rows, cfg.sample, cfg.seed, cfg.stratify_by is not None)
    counts = {"good": len(good), "ungradable": len(ungradable), "duplicates": duplicates,
              "unique": unique_rows, "not_sampled": unique_rows - len(rows), "selected": len(rows)}  # fmt: skip
    return rows, ungradable, counts
