"""Numeric answer: the last number in the answer is within tolerance of the reference number.

Numbers may carry thousands separators ("1,234"), a sign, decimals, an exponent or be a fraction
("3/4"). ``|answer - reference| <= abs_tol + rel_tol * |reference|``. An answer without a number
scores 0; a reference that is not a number cannot be graded (the cell fails).
"""

from __future__ import annotations

import math
import re
from typing import Optional

from router.label.graders.base import Grade, GradeItem

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?|[-+]?\.\d+")


def _value(token: str) -> Optional[float]:
    token = token.replace(",", "").replace(" ", "")
    try:
        if "/" in token:
            num, den = token.split("/")
            return float(num) / float(den) if float(den) != 0 else None
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def last_number(text: str) -> Optional[float]:
    values = [v for v in (_value(t) for t in _NUMBER.findall(text)) if v is not None]
    return values[-1] if values else None


class NumericAnswer:
    name = "numeric"

    def __init__(self, rel_tol: float = 1e-4, abs_tol: float = 1e-6):
        self.rel_tol, self.abs_tol = rel_tol, abs_tol
        self.fingerprint = f"numeric/1:{rel_tol:g}:{abs_tol:g}"

    def score(self, response: str, reference: str) -> Optional[float]:
        want = last_number(reference)
        if want is None:
            return None
        got = last_number(response)
        return 1.0 if got is not None and abs(got - want) <= self.abs_tol + self.rel_tol * abs(want) else 0.0

    async def grade(self, item: GradeItem) -> Grade:
        if item.reference is None:
            return Grade(None, "no-reference")
        score = self.score(item.response, item.reference)
        return Grade(score, "" if score is not None else "reference-is-not-a-number")
