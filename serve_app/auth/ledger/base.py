"""The ledger: where every replica of the router records, per key, what it spent and how often it
was called, so that limits hold for the whole deployment and survive restarts.

One small interface, two stores: ``sqlite`` (embedded default, one file) and ``redis`` (when a URL
is given, for several Serve nodes). Every method is one atomic step in the store (a SQLite
``BEGIN IMMEDIATE`` transaction, a Redis Lua script), which is what makes "check the budget, then
reserve" safe when many replicas admit requests at once. Methods are synchronous (the gate calls
them in a worker thread).

Names: a *window* is a rate-limit bucket (one UTC minute, ``"<epoch minute>"``); a *period* is a
budget bucket (``"day:2026-05-04"``, ``"month:2026-05"``). Spend in a period is what was settled in
it; *reserved* is the predicted cost of admitted requests whose answer has not come back yet
(reservations expire, so a crashed replica cannot hold budget forever).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Period:
    """One budget bucket of a key: its name (``day:2026-05-04``), its cap (None: count only) and
    when the store may forget it (epoch seconds)."""

    name: str
    cap: Optional[float]
    expires_at: float


@dataclass(frozen=True)
class RateResult:
    allowed: bool
    requests: int  # in the window, including this one when allowed
    tokens: int
    limited_by: Optional[str] = None  # "requests_per_min" or "tokens_per_min" when refused


@dataclass(frozen=True)
class SpendResult:
    ok: bool
    spent: dict  # period name -> settled + reserved USD (before this reservation)
    exceeded: Optional[str] = None  # the first period whose cap this reservation would exceed


class Ledger(ABC):
    kind: str = "?"

    @abstractmethod
    def hit(self, key_id: str, window: str, window_expires_at: float, max_requests: Optional[int],
            max_tokens: Optional[int], now: float) -> RateResult:  # fmt: skip
        """Count one request in ``window`` unless the window's requests or tokens are at their limit."""

    @abstractmethod
    def reserve(self, key_id: str, periods: Sequence[Period], amount: float, reservation_id: str,
                reservation_expires_at: float, enforce: bool, now: float) -> SpendResult:  # fmt: skip
        """Reserve ``amount`` USD unless (``enforce``) settled + reserved + amount exceeds a period's cap."""

    @abstractmethod
    def settle(self, key_id: str, reservation_id: str, periods: Sequence[Period], cost: float, tokens: int,
               window: str, window_expires_at: float, now: float) -> dict:  # fmt: skip
        """Drop the reservation, add the real cost to every period and the tokens to the window;
        returns the settled spend per period."""

    @abstractmethod
    def spent(self, key_id: str, periods: Sequence[Period], now: float) -> dict:
        """Settled + reserved USD per period."""

    @abstractmethod
    def get_state(self, key_id: str) -> Optional[dict]:
        """The key's last saved controller state (JSON-able), if any."""

    @abstractmethod
    def put_state(self, key_id: str, state: dict) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional
        pass
