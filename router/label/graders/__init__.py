"""Graders: each scores one model answer in [0, 1]. One module per grader; ``make_grader`` builds one
by name. A grader that cannot score (a judge that answered prose twice, code that could not be
run) returns a ``Grade`` without a score and a reason: that cell is failed, never scored 0."""

from __future__ import annotations

from router.label.graders.base import Grade, GradeItem, Grader

__all__ = ["Grade", "GradeItem", "Grader", "make_grader"]


def make_grader(name: str, grading, judge=None, fanout=None) -> Grader:
    """The grader called ``name`` with the options of ``grading`` (a ``GradingConfig``); the judge
    needs its ``JudgeConfig`` and the ``Fanout`` that makes its calls."""
    if name == "exact":
        from router.label.graders.exact import ExactMatch

        return ExactMatch()
    if name == "choice":
        from router.label.graders.choice import ChoiceLetter

        return ChoiceLetter()
    if name == "numeric":
        from router.label.graders.numeric import NumericAnswer

        return NumericAnswer(grading.numeric_rel_tol, grading.numeric_abs_tol)
    if name == "code":
        from router.label.graders.code import CodeTests

        return CodeTests(grading.code_timeout_s)
    if name == "judge":
        from router.label.graders.judge import LLMJudge

        if judge is None or fanout is None:
            raise ValueError("grader 'judge' needs a judge config and a fanout")
        return LLMJudge(judge, fanout)
    raise ValueError(f"unknown grader {name!r}")
