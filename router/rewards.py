"""Rewards: turn predicted quality q̂ and cost ĉ into a decision at a trade-off λ.

* ``linear``       r_j = q̂_j − λ·ĉ_j / c_ref               (the paper's linear reward)
* ``routerbench``  r_j = λ·q̂_j − ĉ_j                        (RouterBench's willingness to pay, USD)
* ``exponential``  r_j = q̂_j · exp(−λ·ĉ_j / c_ref)          (our reading of the paper's exponential
  reward, whose formula is not public: a multiplicative cost discount)

``c_ref`` is a cost scale in USD (the training set's mean cost per prompt over the pool) that
makes λ dimensionless for the linear and exponential rewards, so one λ grid fits any price level.
For every reward a larger λ means "cost matters more". Ties pick the cheaper model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

# RouterBench's 32 willingness-to-pay values (USD per unit of quality), from its utils.py.
ROUTERBENCH_WTP = (
    1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 5e-3, 1e-2, 0.1, 0.5, 1.0, 1.5, 2.0, 10.0,
    50.0, 100.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 7500.0, 10000.0, 25000.0,
    50000.0, 75000.0, 100000.0, 1e6, 1e9,
)  # fmt: skip
# Dimensionless cost weights for the normalised rewards: 0 plus 31 log-spaced values 1e-3..1e3.
NORMALISED_GRID = (0.0,) + tuple(float(x) for x in np.logspace(-3, 3, 31))


@dataclass(frozen=True)
class Reward:
    name: str
    formula: str
    fn: Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]
    default_grid: tuple[float, ...]
    # routerbench's λ is willingness to pay: a larger λ means cost matters *less* (the budget
    # controller, serve_app.auth.budget, steers λ the other way for it).
    lambda_raises_cost: bool = False

    def __call__(self, quality: np.ndarray, cost: np.ndarray, lam: float, c_ref: float = 1.0) -> np.ndarray:
        # A huge (finite) λ may overflow to ±inf: still the right order of the models, so no warning.
        with np.errstate(over="ignore"):
            return self.fn(
                np.asarray(quality, dtype=np.float64), np.asarray(cost, dtype=np.float64), float(lam), float(c_ref)
            )


REWARDS: dict[str, Reward] = {
    "linear": Reward("linear", "q - lam * c / c_ref", lambda q, c, lam, ref: q - lam * c / ref, NORMALISED_GRID),
    "routerbench": Reward(
        "routerbench", "lam * q - c", lambda q, c, lam, ref: lam * q - c, ROUTERBENCH_WTP, lambda_raises_cost=True
    ),
    "exponential": Reward(
        "exponential", "q * exp(-lam * c / c_ref)", lambda q, c, lam, ref: q * np.exp(-lam * c / ref), NORMALISED_GRID
    ),
}
REWARD_ALIASES = {"exp": "exponential", "lin": "linear", "wtp": "routerbench"}


def get_reward(name: str) -> Reward:
    """The reward named ``name`` (or an alias); ValueError listing the choices otherwise."""
    key = REWARD_ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose one of {sorted(REWARDS)}")
    return REWARDS[key]


def check_reward(name, source: str = "reward") -> str:
    """The canonical name of reward ``name``; ValueError naming ``source`` (a flag, a field) otherwise."""
    try:
        return get_reward(name).name
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def cost_scale(train_cost: np.ndarray) -> float:
    """``c_ref`` for the normalised rewards: the training set's mean cost per prompt over the pool
    (mean of the (N, M) cost matrix), in USD. 1.0 when every cost is 0, so λ stays meaningful."""
    c = np.asarray(train_cost, dtype=np.float64)
    value = float(c.mean()) if c.size else 0.0
    return value if value > 0 and np.isfinite(value) else 1.0


# A λ written as text (a header, a flag, a model name): a plain decimal number, at most 15 digits on
# each side of the point and a two-digit exponent, so that it is always finite. Python's float()
# alone would also take "1_0", "inf" or "1e999".
LAMBDA_TEXT = r"(?:\d{1,15}(?:\.\d{0,15})?|\.\d{1,15})(?:[eE][+-]?\d{1,2})?"
_LAMBDA_TEXT_RE = re.compile(LAMBDA_TEXT)


def check_lambda(value, source: str = "lambda") -> float:
    """λ as a finite float >= 0, from a number or a numeric string (a flag, a header, a JSON field).

    The one validator of λ: booleans, non-numeric values, NaN, ±infinity and negatives are a
    ValueError whose message starts with ``source``, so each caller's error names its field."""
    if isinstance(value, bool) or (isinstance(value, str) and not _LAMBDA_TEXT_RE.fullmatch(value.strip())):
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise ValueError(f"{source}: lambda must be a finite number >= 0, got {value!r}")
        if isinstance(value, str) and value.strip().startswith("-"):
            raise ValueError(f"{source}: lambda must be a finite number >= 0, got {value!r}")
        raise ValueError(f"{source}: lambda must be a number, got {value!r}")
    try:
        lam = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: lambda must be a number, got {value!r}") from None
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"{source}: lambda must be a finite number >= 0, got {value!r}")
    return lam


def parse_lambdas(text: str, source: str = "--lambda") -> list[float]:
    """The one parser of λ lists (CLI flags): ``"0.1,1,10"`` -> [0.1, 1.0, 10.0], or
    ``logspace:START:STOP:NUM`` (NUM values from 10**START to 10**STOP)."""
    text = str(text).strip()
    if text.startswith("logspace:"):
        try:
            start, stop, num = text.split(":")[1:]
            raw = np.logspace(float(start), float(stop), int(num)).tolist()
        except ValueError:
            raise ValueError(f"{source}: expected v1,v2,... or logspace:START:STOP:NUM, got {text!r}") from None
    else:
        raw = [x.strip() for x in text.split(",") if x.strip()]
    if not raw:
        raise ValueError(f"{source}: give at least one value")
    return [check_lambda(v, source) for v in raw]


def decide(quality: np.ndarray, cost: np.ndarray, lam: float, reward: str | Reward = "linear", c_ref: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Chosen model index per row and the (N, M) rewards. Ties go to the cheaper model."""
    rw = reward if isinstance(reward, Reward) else get_reward(reward)
    values = rw(quality, cost, check_lambda(lam), c_ref)
    best = values.max(axis=1, keepdims=True)
    tied = values >= best - 1e-12 * np.maximum(1.0, np.abs(best))
    choice = np.where(tied, np.asarray(cost, dtype=np.float64), np.inf).argmin(axis=1)
    return choice, values
