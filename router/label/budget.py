"""Spending guard of ``router label``: a budget that is checked before every call.

Before a call the budget *reserves* an estimate of its cost; the call is made only if the money
already spent plus every reservation in flight plus this estimate stays within the budget. When the
answer comes back the reservation is replaced by the real cost (from ``usage``). The estimate is
meant to be an upper bound: prompt tokens from the text's length at a conservative
characters-per-token ratio (tightened to the largest ratio a backend's ``usage`` has shown), and
completion tokens at the request's ``max_tokens``, which a backend does not exceed. So the run stops
*before* the budget is exceeded, not after.

Once one model call does not fit, the budget is exhausted for the rest of the run: no new model
call is made (no cheaper one slips in after it), but the judge may still grade answers already paid
for, as long as each judgment fits; the run finishes what is in flight and stops, and a re-run with a
higher budget goes on from the checkpoint.
"""

from __future__ import annotations

import math
import threading
from typing import Optional

from router.backends import BackendConfig

# Tokens per character assumed before a backend has reported usage: 1/3 is more than English text
# (about 1/4) needs, so estimates err on the high side.
DEFAULT_TOKENS_PER_CHAR = 1 / 3
# Characters of the request (JSON of its messages) that are chat-template overhead, not text.
MESSAGE_OVERHEAD_TOKENS = 8


class CostEstimator:
    """Token and cost estimates from text length, calibrated by the ``usage`` answers report."""

    def __init__(self) -> None:
        self.tokens_per_char: dict[str, float] = {}

    def prompt_tokens(self, model: str, chars: int) -> int:
        ratio = max(self.tokens_per_char.get(model, 0.0), DEFAULT_TOKENS_PER_CHAR)
        return int(math.ceil(chars * ratio * 1.1)) + MESSAGE_OVERHEAD_TOKENS

    def observe(self, model: str, chars: int, prompt_tokens: int) -> None:
        if chars > 0 and prompt_tokens > 0:
            self.tokens_per_char[model] = max(self.tokens_per_char.get(model, 0.0), prompt_tokens / chars)

    def worst_case(self, backend: BackendConfig, chars: int, max_tokens: int) -> float:
        """The most a call should cost: estimated prompt tokens, and ``max_tokens`` of answer."""
        return backend.observed_cost(self.prompt_tokens(backend.model, chars), max_tokens)

    def from_text(self, backend: BackendConfig, prompt_chars: int, completion_chars: int) -> float:
        """The cost of an answer without ``usage``: tokens estimated from characters (4 per token)."""
        return backend.observed_cost(int(math.ceil(prompt_chars / 4)), int(math.ceil(completion_chars / 4)))


class Budget:
    """Reservations and real spend against an optional limit (``limit_usd`` None: no limit)."""

    def __init__(self, limit_usd: Optional[float], spent_before_usd: float = 0.0):
        self.limit = limit_usd
        self.spent_before = spent_before_usd
        self.spent_run = 0.0
        self.reserved = 0.0
        self.exhausted = False
        self.refused = 0  # calls not made for want of budget
        self._lock = threading.Lock()  # reservations come from one event loop; the lock guards readers elsewhere

    @property
    def spent(self) -> float:
        return self.spent_before + self.spent_run

    def reserve(self, estimate: float, finishing: bool = False) -> bool:
        """Reserve ``estimate`` if it fits. ``finishing``: a call that completes work already paid for
        (a judgment of a bought answer) is not stopped by an exhausted budget, only by the limit."""
        with self._lock:
            over = self.limit is not None and self.spent + self.reserved + estimate > self.limit
            if over or (self.exhausted and not finishing):
                if not finishing:
                    self.exhausted = True
                self.refused += 1
                return False
            self.reserved += estimate
            return True

    def settle(self, estimate: float, actual: float) -> None:
        """Replace a reservation by what the call really cost (0 for a failed call)."""
        with self._lock:
            self.reserved = max(0.0, self.reserved - estimate)
            self.spent_run += actual

    def remaining(self) -> Optional[float]:
        return None if self.limit is None else max(0.0, self.limit - self.spent)
