"""Multiple choice: the letter (A-J) the answer commits to equals the reference's letter.

The answer's letter is, in order of preference: the last "answer is X" / "answer: X" phrase; a
letter that opens the answer ("B", "(B)", "B.", "B) ...", not "A cat" or "I think"); the only parenthesised letter "(X)" in
the answer. An answer that commits to no letter scores 0: not choosing is a wrong answer.
"""

from __future__ import annotations

import re
from typing import Optional

from router.label.graders.base import Grade, GradeItem

_PHRASE = re.compile(r"answer\s*(?:is|:)?\s*:?\s*\(?\s*([A-J])\s*\)?(?![A-Za-z])", re.I)
# A bare leading letter needs punctuation after it ("B.", "B)"): "I think" and "A cat" are words.
_LEADING = re.compile(r"^\s*(?:\(([A-J])\)|([A-J])(?:[).:]|\s*$))")
_PAREN = re.compile(r"\(([A-J])\)")


def choice_letter(text: str) -> Optional[str]:
    phrases = _PHRASE.findall(text)
    if phrases:
        return phrases[-1].upper()
    m = _LEADING.match(text)
    if m:
        return m.group(1) or m.group(2)
    paren = set(_PAREN.findall(text))
    return paren.pop() if len(paren) == 1 else None


class ChoiceLetter:
    name = "choice"
    fingerprint = "choice/1"

    def score(self, response: str, reference: str) -> Optional[float]:
        want = choice_letter(reference.strip()) if len(reference.strip()) > 1 else reference.strip().upper()
        if want is None or not re.fullmatch(r"[A-J]", want):
            return None
        return 1.0 if choice_letter(response) == want else 0.0

    async def grade(self, item: GradeItem) -> Grade:
        if item.reference is None:
            return Grade(None, "no-reference")
        score = self.score(item.response, item.reference)
        return Grade(score, "" if score is not None else "reference-is-not-a-letter")
