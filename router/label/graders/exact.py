"""Exact match: the normalised answer equals the normalised reference (``base.normalize``)."""

from __future__ import annotations

from router.label.graders.base import Grade, GradeItem, normalize


class ExactMatch:
    name = "exact"
    fingerprint = "exact/1"

    def score(self, response: str, reference: str) -> float:
        return 1.0 if normalize(response) == normalize(reference) else 0.0

    async def grade(self, item: GradeItem) -> Grade:
        if item.reference is None:
            return Grade(None, "no-reference")
        return Grade(self.score(item.response, item.reference))
