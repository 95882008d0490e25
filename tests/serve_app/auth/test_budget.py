"""Budget periods, the 429 that names a budget, and the λ controller on a synthetic plant."""

from __future__ import annotations

import calendar
import math
import random

import pytest

from serve_app.auth.budget import LambdaController, budget_error, exhausted, lambda_bounds, periods
from serve_app.auth.keys import KeyPolicy


def test_periods_are_utc_day_and_month_with_their_caps():
    now = calendar.timegm((2026, 2, 28, 23, 59, 30))
    day, month = periods(KeyPolicy(budget_usd_per_day=2.0, budget_usd_per_month=10.0), now)
    assert (day.name, day.cap, month.name, month.cap) == ("day:2026-02-28", 2.0, "month:2026-02", 10.0)
    assert periods(KeyPolicy(), now)[0].cap is None  # counted, not capped
    err = budget_error("team-a", day, 2.0004, now)
    assert err.status == 429 and err.headers["Retry-After"] == "30"
    assert "daily budget of $2" in err.message and "team-a" in err.message
    assert exhausted([day, month], {day.name: 2.0, month.name: 2.0}) is day
    assert exhausted([day, month], {day.name: 1.99, month.name: 5.0}) is None
    assert exhausted([day, month], {day.name: 1.0, month.name: 10.0}) is month
    err = budget_error("team-a", month, 9.0, now, predicted=0.5)
    assert "would exceed" in err.message and "monthly budget" in err.message and err.param == "budget_usd_per_month"


def plant(lam: float, level: float) -> float:
    """Spend per request falls with λ (a smooth stand-in for the router's pick of cheaper models)."""
    return level / (1.0 + lam)


@pytest.mark.parametrize("lam0", [0.01, 1.0, 100.0])
def test_controller_tracks_the_target_through_a_shift_of_the_mix(lam0):
    rng = random.Random(0)
    target = 1.0
    ctl = LambdaController(target, lam0, "linear")
    spend = []
    for i in range(4000):
        level = 3.0 if i < 2000 else 12.0  # cheap prompts, then expensive ones
        cost = plant(ctl.lam, level) * rng.lognormvariate(0, 0.5) / math.exp(0.125)  # noisy, mean-preserving
        spend.append(cost)
        ctl.observe(cost)
    for half in (spend[1000:2000], spend[3000:4000]):
        assert sum(half) / len(half) == pytest.approx(target, rel=0.1)
    assert ctl.lam == pytest.approx(11.0, rel=0.3)  # the λ where level / (1 + λ) = target


def test_controller_sign_for_routerbench_and_clamping():
    # routerbench: a larger λ (willingness to pay) spends more, so overspending must lower it.
    rb = LambdaController(1.0, 10.0, "routerbench")
    lin = LambdaController(1.0, 10.0, "linear")
    for _ in range(20):
        rb.observe(3.0)
        lin.observe(3.0)
    assert rb.lam < 10.0 < lin.lam
    lo, hi = lambda_bounds("linear")
    ctl = LambdaController(1.0, 1.0, "linear")
    for _ in range(5000):
        ctl.observe(100.0)
    assert ctl.lam == pytest.approx(hi)
    for _ in range(60):  # anti-windup: it comes back at once instead of unwinding 5000 steps
        ctl.observe(0.0)
    assert ctl.lam < hi / 2
    assert lo <= LambdaController(1.0, 0.0, "linear").lam  # λ0 = 0 starts at the bottom of the range


def test_controller_state_resumes():
    a = LambdaController(1.0, 1.0, "linear")
    for _ in range(30):
        a.observe(2.0)
    b = LambdaController(1.0, 1.0, "linear", state=a.state())
    assert b.lam == pytest.approx(a.lam) and b.n == 30
