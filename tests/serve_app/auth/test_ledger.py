"""The ledger's contract, run against SQLite and against a real Redis (started by the fixture), and
SQLite shared by several processes (as several Dispatcher replicas on one node share it)."""

from __future__ import annotations

import multiprocessing as mp
import uuid

import pytest

from serve_app.auth.ledger import Period, open_ledger

NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "redis"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        led = open_ledger(None, tmp_path / "ledger.sqlite")
    else:
        url = request.getfixturevalue("redis_url")
        led = open_ledger(url)
        led.client.flushdb()
    yield led
    led.close()


def _periods(day_cap=None, month_cap=None):
    return [Period("day:x", day_cap, NOW + 86400), Period("month:x", month_cap, NOW + 30 * 86400)]


def test_rate_limit_counts_requests_and_tokens_per_window(ledger):
    for i in range(3):
        r = ledger.hit("k", "w1", NOW + 60, 3, None, NOW)
        assert r.allowed and r.requests == i + 1
    r = ledger.hit("k", "w1", NOW + 60, 3, None, NOW)
    assert not r.allowed and r.limited_by == "requests_per_min" and r.requests == 3
    assert ledger.hit("k", "w2", NOW + 120, 3, None, NOW + 60).allowed  # a new window starts from 0
    assert ledger.hit("other", "w1", NOW + 60, 3, None, NOW).allowed  # per key
    ledger.settle("t", "-", _periods(), 0.0, 500, "w1", NOW + 60, NOW)
    assert ledger.hit("t", "w1", NOW + 60, None, 1000, NOW).allowed
    ledger.settle("t", "-", _periods(), 0.0, 600, "w1", NOW + 60, NOW)
    r = ledger.hit("t", "w1", NOW + 60, None, 1000, NOW)
    assert not r.allowed and r.limited_by == "tokens_per_min" and r.tokens == 1100


def test_reserve_refuses_past_the_cap_and_settle_charges_the_real_cost(ledger):
    ps = _periods(day_cap=1.0)
    a = ledger.reserve("k", ps, 0.6, "a", NOW + 100, True, NOW)
    assert a.ok and a.spent == {"day:x": 0.0, "month:x": 0.0}
    b = ledger.reserve("k", ps, 0.6, "b", NOW + 100, True, NOW)
    assert not b.ok and b.exceeded == "day:x" and b.spent["day:x"] == pytest.approx(0.6)  # the reservation counts
    assert ledger.reserve("k", ps, 0.3, "c", NOW + 100, True, NOW).ok
    settled = ledger.settle("k", "a", ps, 0.5, 10, "w", NOW + 60, NOW)  # cheaper than predicted
    assert settled == pytest.approx({"day:x": 0.5, "month:x": 0.5})
    assert ledger.spent("k", ps, NOW) == pytest.approx({"day:x": 0.8, "month:x": 0.8})  # 0.5 settled + 0.3 reserved
    ledger.settle("k", "c", ps, 0.0, 0, "w", NOW + 60, NOW)  # released
    assert ledger.spent("k", ps, NOW)["day:x"] == pytest.approx(0.5)
    # Not enforced (cheapest-only mode): recorded even past the cap.
    assert ledger.reserve("k", ps, 5.0, "d", NOW + 100, False, NOW).ok


def test_reservations_expire(ledger):
    ps = _periods(day_cap=1.0)
    assert ledger.reserve("k", ps, 0.9, "a", NOW + 10, True, NOW).ok
    assert not ledger.reserve("k", ps, 0.9, "b", NOW + 10, True, NOW + 5).ok
    assert ledger.reserve("k", ps, 0.9, "b", NOW + 30, True, NOW + 11).ok  # a crashed replica's reservation lapsed


def test_controller_state_round_trips(ledger):
    assert ledger.get_state("k") is None
    ledger.put_state("k", {"integral": 0.25, "n": 3, "signature": [1.0, 0.5, "linear"]})
    assert ledger.get_state("k") == {"integral": 0.25, "n": 3, "signature": [1.0, 0.5, "linear"]}


def test_sqlite_survives_a_restart(tmp_path):
    ps = _periods(day_cap=1.0)
    led = open_ledger(f"sqlite://{tmp_path / 'l.sqlite'}")
    led.settle("k", "-", ps, 0.7, 0, "w", NOW + 60, NOW)
    led.close()
    again = open_ledger(str(tmp_path / "l.sqlite"))
    assert again.spent("k", ps, NOW)["day:x"] == pytest.approx(0.7)
    assert not again.reserve("k", ps, 0.4, "x", NOW + 60, True, NOW).ok


def _replica(path: str, n: int, out) -> None:
    led = open_ledger(path)
    ps = _periods(day_cap=1.0)
    ok = 0
    for _ in range(n):
        rid = uuid.uuid4().hex
        if led.reserve("k", ps, 0.01, rid, NOW + 600, True, NOW).ok:
            led.settle("k", rid, ps, 0.01, 1, "w", NOW + 60, NOW)
            ok += 1
    out.put(ok)


def test_sqlite_budget_holds_across_processes(tmp_path):
    """Three processes race for a $1 cap in $0.01 steps: exactly 100 are admitted, never more."""
    path = str(tmp_path / "shared.sqlite")
    open_ledger(path).close()
    ctx = mp.get_context("spawn")  # not fork: the test process may hold Ray threads
    out = ctx.Queue()
    procs = [ctx.Process(target=_replica, args=(path, 50, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    admitted = sum(out.get(timeout=5) for _ in procs)
    assert admitted == 100
    assert open_ledger(path).spent("k", _periods(day_cap=1.0), NOW)["day:x"] == pytest.approx(1.0)
