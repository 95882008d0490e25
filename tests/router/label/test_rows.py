"""Choosing the rows to label: ungradable rows quarantined before any call, dedup on the prompt text,
unique ids, and a seeded sample stratified by a field."""

from __future__ import annotations

import json
from collections import Counter

from router.label.config import LabelConfig
from router.label.rows import select_rows


def _parsed(i, prompt, **fields):
    return {"id": str(i), "prompt": prompt, "error": "", "source": "logs.jsonl", "line": i + 1,
            "fields": json.dumps({"prompt": prompt, **fields})}  # fmt: skip


def test_ungradable_rows_are_quarantined_and_duplicates_dropped():
    parsed = [_parsed(0, "a?", answer="1"), _parsed(1, "b?"), _parsed(2, "a?", answer="1"), _parsed(3, "c?", answer="3")]
    rows, quarantined, counts = select_rows(parsed, LabelConfig(input="x", backends="b.yaml", out="t.parquet",
                                                                grading={"reference_field": "answer"}))  # fmt: skip
    assert [r.prompt for r in rows] == ["a?", "c?"] and rows[0].grader == "exact" and rows[0].eval_name == "unlabelled"
    assert [q["id"] for q in quarantined] == ["1"] and "reference" in quarantined[0]["reason"]
    assert counts == {"good": 4, "ungradable": 1, "duplicates": 1, "unique": 2, "not_sampled": 0, "selected": 2}


def test_repeated_ids_of_different_prompts_get_unique_sample_ids():
    parsed = [_parsed(0, "a?", answer="1"), _parsed(0, "b?", answer="2")]
    rows, _, _ = select_rows(parsed, LabelConfig(input="x", backends="b.yaml", out="t.parquet", grading={"reference_field": "answer"}))
    assert [r.sample_id for r in rows] == ["0", "0#2"]


def test_stratified_sample_keeps_each_share_and_is_seeded():
    parsed = [_parsed(i, f"q{i}", answer="1", task="big" if i < 80 else "small") for i in range(100)]
    cfg = LabelConfig(input="x", backends="b.yaml", out="t.parquet", grading={"reference_field": "answer"}, sample=10,
                      stratify_by="task", seed=3)  # fmt: skip
    rows, _, counts = select_rows(parsed, cfg)
    assert Counter(r.stratum for r in rows) == {"big": 8, "small": 2}
    assert counts["not_sampled"] == 90
    assert [r.sample_id for r in rows] == [r.sample_id for r in select_rows(parsed, cfg)[0]]
    other = select_rows(parsed, cfg.model_copy(update={"seed": 4}))[0]
    assert [r.sample_id for r in rows] != [r.sample_id for r in other]
