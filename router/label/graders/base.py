"""What a grader takes and gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol


@dataclass(frozen=True)
class GradeItem:
    prompt: str
    response: str
    reference: Optional[str] = None
    tests: Optional[str] = None


@dataclass(frozen=True)
class Grade:
    """``score`` in [0, 1], or None with ``reason`` when the answer could not be graded.
    ``cost``: USD the grading itself spent (the judge's calls); ``raw``: the judge's last answer."""

    score: Optional[float]
    reason: str = ""
    cost: float = 0.0
    raw: str = ""
    calls: int = 0

    @property
    def ok(self) -> bool:
        return self.score is not None


class Grader(Protocol):
    name: str
    fingerprint: str  # changes when a setting that changes the scores changes (part of the checkpoint key)

    async def grade(self, item: GradeItem) -> Grade: ...


def normalize(text: str) -> str:
    """Lower case, no surrounding quotes/punctuation, single spaces (SQuAD-style answer normalisation,
    without dropping articles)."""
    return " ".join(text.strip().strip("\"'`").strip().rstrip(".!?").lower().split())
