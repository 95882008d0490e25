"""LLM-as-judge: an OpenAI-compatible judge endpoint scores the answer with a rubric prompt.

The judgment is parsed strictly: the judge's whole answer must be one number in [0, 1] (``0.8``),
or a JSON object ``{"score": 0.8}``; anything else (prose, a number with words around it, a
number outside [0, 1]) is a failed judgment. A failed judgment is asked once more; when the second
one fails too, the cell is quarantined (reason ``judge-unparseable``, the raw answers kept in the
journal) and never scored. A judge call that fails (HTTP errors after the retries) fails the cell
the same way. The judge's own cost is counted separately from the models' (``Grade.cost``).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Optional

from router.label.config import JudgeConfig
from router.label.graders.base import Grade, GradeItem

JUDGE_NAME = "judge"  # the Fanout backend name of the judge (it may share a model name with the pool)
_NUMBER = re.compile(r"(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)")
RETRY_NOTE = "\n\nYour previous reply could not be read. Reply with only the score: one number between 0 and 1."


def parse_judgment(text: str) -> Optional[float]:
    """The score of a judgment, or None if it is not exactly a number in [0, 1] (or {"score": x})."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return None
        score = obj.get("score") if isinstance(obj, dict) and len(obj) == 1 else None
        if isinstance(score, (int, float)) and not isinstance(score, bool) and 0 <= score <= 1:
            return float(score)
    return None


_PLACEHOLDER = re.compile(r"\{(prompt|response|reference|reference_clause|reference_block)\}")


def render_rubric(rubric: str, item: GradeItem) -> str:
    """The rubric with its placeholders filled, in one pass (braces inside the prompt or the answer
    are left alone, and a placeholder-like text inside them is not filled again)."""
    has_ref = item.reference is not None and item.reference.strip() != ""
    values = {
        "prompt": item.prompt,
        "response": item.response,
        "reference": item.reference if has_ref else "",
        "reference_clause": ", compared with the reference answer" if has_ref else "",
        "reference_block": f"\n<reference>{item.reference}</reference>" if has_ref else "",
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], rubric)


class LLMJudge:
    name = "judge"

    def __init__(self, config: JudgeConfig, fanout):
        self.config = config
        self.fanout = fanout
        rubric_hash = hashlib.sha256(config.rubric.encode()).hexdigest()[:12]
        self.fingerprint = f"judge/1:{config.upstream_model}:{rubric_hash}:{config.max_tokens}"

    async def grade(self, item: GradeItem) -> Grade:
        prompt = render_rubric(self.config.rubric, item)
        cost, raws = 0.0, []
        for attempt in range(2):
            messages = [{"role": "user", "content": prompt + (RETRY_NOTE if attempt else "")}]
            out = await self.fanout.call(JUDGE_NAME, messages, self.config.max_tokens, 0.0, finishing=True)
            cost += out.cost
            if out.status == "skipped":
                return Grade(None, out.reason, cost, "\n---\n".join(raws), attempt)
            if not out.ok:
                return Grade(None, f"judge-{out.reason}", cost, "\n---\n".join(raws), attempt + 1)
            raws.append(out.response)
            score = parse_judgment(out.response)
            if score is not None:
                return Grade(score, "", cost, out.response, attempt + 1)
        return Grade(None, "judge-unparseable", cost, "\n---\n".join(raws), 2)
