"""TWPA, pump magnitude and velocity: incremental == naive recomputation, worked examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.indicators import naive
from tui_trader.domain.indicators.pump import PumpMagnitude
from tui_trader.domain.indicators.series import EventLog, Kind
from tui_trader.domain.indicators.twpa import Twpa
from tui_trader.domain.indicators.velocity import PriceVelocity

T0 = 1_700_000_000_000
EXAMPLE = [(-65, 1.000), (-50, 1.010), (-35, 1.020), (-12, 1.080), (-4, 1.100)]  # strategy.md §2.2


def _log(trades: list[tuple[int, float]]) -> EventLog:
    log = EventLog(Kind.STEP)
    for t, p in trades:
        log.add(t, p)
    return log


def test_worked_example_twpa_pump_velocity():
    log = _log([(T0 + s * 1000, p) for s, p in EXAMPLE])
    base, cur = Twpa(log, (60, 30)), Twpa(log, (10, 0))
    pump, vel = PumpMagnitude(log), PriceVelocity(log)
    log.advance(T0)
    assert base.value(T0) == pytest.approx(1.008333, abs=1e-6)
    assert cur.value(T0) == pytest.approx(1.088, abs=1e-12)
    assert pump.value(T0) == pytest.approx(7.90, abs=0.005)
    assert vel.value(T0) == pytest.approx(0.543, abs=0.0005)


def test_undefined_until_window_covered_and_carry_in_counts():
    log = _log([(T0, 1.0)])
    twpa = Twpa(log, (60, 0))
    log.advance(T0 + 29_000)
    assert twpa.value(T0 + 29_000) is None  # 29 s of 60: below 50 % coverage
    log.advance(T0 + 30_000)
    assert twpa.value(T0 + 30_000) == 1.0
    log.add(T0 + 100_000, 2.0)
    log.advance(T0 + 110_000)
    # window [50 s, 110 s]: 1.0 carried in for 50 s, 2.0 for 10 s
    assert twpa.value(T0 + 110_000) == pytest.approx((50 * 1.0 + 10 * 2.0) / 60)


def test_pump_is_none_without_trades():
    log = EventLog(Kind.STEP)
    pump = PumpMagnitude(log)
    log.advance(T0)
    assert pump.value(T0) is None


def _check_stream(trades: list[tuple[int, float]], eval_times: list[int]) -> int:
    """Feed trades and compare every indicator at each time with the naive one; returns #defined."""
    log = EventLog(Kind.STEP)
    twpa = Twpa(log, (300, 0))
    pump = PumpMagnitude(log)
    vel = PriceVelocity(log)
    i = defined = 0
    for now in eval_times:
        while i < len(trades) and trades[i][0] <= now:
            log.add(*trades[i])
            i += 1
        log.advance(now)
        seen = trades[:i]
        pairs = [
            (twpa.value(now), naive.twpa(seen, now, 300_000, 0)),
            (pump.value(now), naive.pump(seen, now)),
            (vel.value(now), naive.velocity(seen, now)),
        ]
        for got, want in pairs:
            assert naive.close_enough(got, want), (now, got, want)
            defined += got is not None
    return defined


stream = st.lists(
    st.tuples(st.integers(0, 20_000), st.floats(0.5, 2.0, allow_nan=False), st.integers(0, 3)),
    min_size=1,
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(stream)
def test_incremental_matches_naive_on_random_streams(items):
    t = T0
    trades, evals = [], []
    for dt, price, extra_evals in items:
        t += dt
        trades.append((t, price))
        evals.extend(t + k * 3_700 for k in range(extra_evals + 1))
    evals = sorted(set(evals))
    _check_stream(trades, evals)


def test_matches_naive_on_real_trades():
    rows = naive.read_rows("binance_BTC-USDT_trades_20210108.csv")
    trades = [(int(r["timestamp_ms"]), float(r["price"])) for r in rows]
    evals = sorted({t for t, _ in trades} | {t + 500 for t, _ in trades[::7]})
    assert _check_stream(trades, evals) > 1000


def test_matches_naive_on_replayed_pump_candles():
    ticks = naive.replay_ticks(naive.read_rows("bittrex_NXT-BTC_1m_20171130-20171210.csv", limit=1500))
    trades = [(t, p) for t, p, _ in ticks]
    evals = sorted({t for t, _ in trades} | {t + 10_000 for t, _ in trades[::3]})
    assert _check_stream(trades, evals) > 3000


def test_memory_stays_bounded_by_the_window():
    log = EventLog(Kind.STEP)
    twpa = Twpa(log, (60, 0))
    for k in range(10_000):
        log.add(T0 + k * 1000, 1.0 + (k % 7) / 100)
        log.advance(T0 + k * 1000)
        twpa.value(T0 + k * 1000)
    assert len(log) <= 62
    assert len(log._t) <= 2 * 62 + 64  # compacted, not just marked dead
