"""Spend per key: the budget periods and their caps, the 429 that names an exhausted budget, and the
λ feedback controller that steers a key's λ so that its realised spend tracks a target.

**The controller.** The plant is "spend per request as a function of λ": for the linear and
exponential rewards a larger λ makes the router pick cheaper models, so spend falls as λ rises
(for routerbench's willingness-to-pay λ it rises; the sign is flipped). How much it falls depends
on the prompt mix, which changes over time, which is why an offline λ (``router tune
--calibrate``) drifts off target. The controller works on log λ, because λ's effect is roughly
proportional (its grids are log-spaced) and a log can never make λ negative:

    e_i     = clip(c_i / T − 1, −1, 3)             relative error of request i's real cost c_i vs the target T
    I      += k_i · e_i                             integral: log λ moves after every settled request
    E      += α · (c_i / T − E)                     running mean of c / T (the recent spend rate)
    log λ   = clamp(log λ₀ + s·(I + k_p · (E − 1)))  s = +1, or −1 for routerbench

The integral alone removes any steady error (λ keeps moving while the spend rate is off target);
the proportional part on the running mean reacts faster to a change of mix. The error is clipped
so that one very expensive answer moves λ by at most 3·k_i, and λ is clamped to the reward's grid
range; both are also the anti-windup (the integral state is clamped with λ). It uses the relative
error, not log(c/T), so that the *arithmetic* mean spend (what the bill shows) is what is driven to
the target.
"""

from __future__ import annotations

import calendar
import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from router.rewards import get_reward
from serve_app.auth.keys import KeyPolicy
from serve_app.auth.ledger import Period
from serve_app.protocol import RequestError

PERIOD_WORDS = {"day": "daily", "month": "monthly"}


def periods(policy: KeyPolicy, now: float) -> list[Period]:
    """The key's two budget buckets at ``now`` (UTC day and month); a bucket without a cap is only counted."""
    t = time.gmtime(now)
    day_end = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)) + 86400
    month_days = calendar.monthrange(t.tm_year, t.tm_mon)[1]
    month_end = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)) + month_days * 86400
    return [
        # Kept a day past their end, so that a request settling just after midnight is not lost.
        Period(f"day:{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", policy.budget_usd_per_day, day_end + 86400),
        Period(f"month:{t.tm_year:04d}-{t.tm_mon:02d}", policy.budget_usd_per_month, month_end + 86400),
    ]


def period_end(period: Period) -> float:
    return period.expires_at - 86400


def exhausted(ps: Sequence[Period], spent: dict) -> Optional[Period]:
    """The first capped period whose settled + reserved spend has reached its cap."""
    return next((p for p in ps if p.cap is not None and spent.get(p.name, 0.0) >= p.cap - 1e-12), None)


def budget_error(key_id: str, period: Period, spent: float, now: float, predicted: Optional[float] = None) -> RequestError:
    """429 naming the budget, with Retry-After = seconds until the period resets."""
    kind = period.name.split(":")[0]
    wait = max(1, math.ceil(period_end(period) - now))
    word, budget = PERIOD_WORDS[kind], f"${period.cap:g}"
    if predicted is None:
        head = f"budget: key {key_id!r} has exhausted its {word} budget of {budget}"
    else:
        head = f"budget: this request (predicted ${predicted:.6f}) would exceed key {key_id!r}'s {word} budget of {budget}"
    message = f"{head} (spent or reserved: ${spent:.6f} in {period.name} UTC); it resets in {wait} s"
    return RequestError(429, message, type="budget_exceeded", param=f"budget_usd_per_{kind}",
                        headers={"Retry-After": str(wait), "x-router-key": key_id})  # fmt: skip


@dataclass(frozen=True)
class ControllerSettings:
    k_i: float = 0.03  # log λ per request at 100% overspend
    k_p: float = 0.5  # log λ per unit of the running mean's relative error
    alpha: float = 0.05  # running mean weight (~20 requests)
    error_min: float = -1.0
    error_max: float = 3.0


def lambda_bounds(reward: str) -> tuple[float, float]:
    """λ range of the controller: the positive part of the reward's default grid."""
    grid = [x for x in get_reward(reward).default_grid if x > 0]
    return min(grid), max(grid)


class LambdaController:
    """Log-space PI controller of one key's λ (see the module doc). Not thread-safe: one per replica
    and key, used from the replica's event loop."""

    def __init__(self, target_usd_per_request: float, lam0: float, reward: str,
                 settings: ControllerSettings = ControllerSettings(), state: Optional[dict] = None):  # fmt: skip
        if not target_usd_per_request > 0:
            raise ValueError(f"spend target must be > 0, got {target_usd_per_request}")
        self.target = float(target_usd_per_request)
        self.reward = get_reward(reward).name
        self.settings = settings
        self.sign = -1.0 if get_reward(reward).lambda_raises_cost else 1.0
        self.lo, self.hi = (math.log(b) for b in lambda_bounds(self.reward))
        self.log_lam0 = min(max(math.log(lam0) if lam0 > 0 else self.lo, self.lo), self.hi)
        self.integral = 0.0
        self.mean_ratio = 1.0
        self.n = 0
        if state:
            self.integral = float(state.get("integral", 0.0))
            self.mean_ratio = float(state.get("mean_ratio", 1.0))
            self.n = int(state.get("n", 0))

    def _clamp(self, x: float) -> float:
        return min(max(x, self.lo), self.hi)

    @property
    def lam(self) -> float:
        s = self.settings
        return math.exp(self._clamp(self.log_lam0 + self.sign * (self.integral + s.k_p * (self.mean_ratio - 1.0))))

    def observe(self, cost_usd: float) -> float:
        """One settled request's real cost; returns the new λ."""
        s = self.settings
        ratio = max(0.0, float(cost_usd)) / self.target
        err = min(max(ratio - 1.0, s.error_min), s.error_max)
        self.mean_ratio += s.alpha * (min(ratio, 1.0 + s.error_max) - self.mean_ratio)
        self.integral += s.k_i * err
        # Anti-windup: the integral may not push log λ past the clamp.
        lo, hi = sorted(((self.lo - self.log_lam0) * self.sign, (self.hi - self.log_lam0) * self.sign))
        self.integral = min(max(self.integral, lo), hi)
        self.n += 1
        return self.lam

    def state(self) -> dict:
        return {"integral": self.integral, "mean_ratio": self.mean_ratio, "n": self.n, "lam": self.lam}
