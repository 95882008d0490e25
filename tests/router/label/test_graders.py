"""Graders: reference-based ones on answers of known shape, the code runner's limits, and the
judge's strict parsing (prose is a failure, retried once, then quarantined)."""

from __future__ import annotations

import asyncio

import pytest

from router.label.graders import GradeItem, make_grader
from router.label.graders.choice import choice_letter
from router.label.graders.judge import parse_judgment, render_rubric
from router.label.graders.numeric import last_number
from router.label.config import GradingConfig


def grade(name, response, reference=None, tests=None, **opts):
    g = make_grader(name, GradingConfig(**opts))
    return asyncio.run(g.grade(GradeItem("p", response, reference, tests)))


def test_exact_match_normalises_case_space_and_final_punctuation():
    assert grade("exact", "  Paris. ", "paris").score == 1.0
    assert grade("exact", "The capital is Paris", "Paris").score == 0.0


@pytest.mark.parametrize("text, letter", [
    ("The answer is (C).", "C"), ("B) because ...", "B"), ("answer: d", "D"), ("I think (A) fits best", "A"),
    ("Not sure, sorry.", None), ("It is either (A) or (B)", None), ("I would say so", None),
])  # fmt: skip
def test_choice_letter(text, letter):
    assert choice_letter(text) == letter


def test_choice_grader():
    assert grade("choice", "The answer is B", "B").score == 1.0
    assert grade("choice", "The answer is C", "(B)").score == 0.0
    assert grade("choice", "Not sure", "B").score == 0.0  # no letter chosen: wrong, not ungradable
    assert grade("choice", "B", "forty two").reason == "reference-is-not-a-letter"


def test_numeric_grader_with_tolerance():
    assert last_number("so 1,234.5 apples, then 3/4 of them") == 0.75
    assert grade("numeric", "The total is 1,000 dollars", "1000").score == 1.0
    assert grade("numeric", "about 3.1416", "3.14159", numeric_rel_tol=1e-3).score == 1.0
    assert grade("numeric", "about 3.2", "3.14159", numeric_rel_tol=1e-3).score == 0.0
    assert grade("numeric", "no idea", "7").score == 0.0
    assert grade("numeric", "7", "seven").score is None


def test_code_grader_runs_tests_with_a_time_limit():
    tests = "assert add(2, 3) == 5"
    good = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert grade("code", good, tests=tests).score == 1.0
    assert grade("code", "def add(a, b):\n    return a - b", tests=tests).score == 0.0
    hang = grade("code", "def add(a, b):\n    while True: pass", tests=tests, code_timeout_s=1)
    assert hang.score == 0.0 and hang.raw == "timeout"
    assert grade("code", good, tests=None).reason == "no-tests"


@pytest.mark.parametrize("text, score", [
    ("0.7", 0.7), (" 1 ", 1.0), ("0", 0.0), ('{"score": 0.25}', 0.25),
    ("Score: 0.7", None), ("0.7 because it is right", None), ("1.5", None), ("-0.1", None), ('{"score": "high"}', None), ("", None),
])  # fmt: skip
def test_judgment_is_parsed_strictly(text, score):
    assert parse_judgment(text) == score


def test_rubric_fills_placeholders_once():
    from router.label.config import DEFAULT_RUBRIC

    text = render_rubric(DEFAULT_RUBRIC, GradeItem("what is {response}?", "x {prompt}", "42"))
    assert "<prompt>what is {response}?</prompt>" in text and "<response>x {prompt}</response>" in text
    assert "<reference>42</reference>" in text and "compared with the reference" in text
    assert "<reference>" not in render_rubric(DEFAULT_RUBRIC, GradeItem("p", "r"))


def _judge(stub, garbage: int):
    from router.label.budget import Budget
    from router.label.config import BackendLimits, JudgeConfig
    from router.label.fanout import Fanout
    from router.label.graders.judge import JUDGE_NAME, LLMJudge

    stub.behaviour.judge_garbage = garbage
    cfg = JudgeConfig(model="stub-judge", base_url=f"http://127.0.0.1:{stub.port}/v1", input_price_per_mtok=1.0)

    async def go():
        fan = Fanout({JUDGE_NAME: cfg}, {JUDGE_NAME: BackendLimits()}, Budget(None), backoff_s=0.01)
        try:
            return await LLMJudge(cfg, fan).grade(GradeItem("2+2?", "It is 4", "4"))
        finally:
            await fan.close()

    return asyncio.run(go())


def test_judge_that_answers_prose_is_asked_again_then_quarantined(stub):
    once = _judge(stub, garbage=1)  # prose, then a number
    assert once.score == 1.0 and once.calls == 2 and once.cost > 0
    twice = _judge(stub, garbage=2)
    assert twice.score is None and twice.reason == "judge-unparseable" and twice.calls == 2
    assert "quite good" in twice.raw and twice.cost > 0  # the judge's own cost is still counted
    assert _judge(stub, garbage=0).score == 1.0
