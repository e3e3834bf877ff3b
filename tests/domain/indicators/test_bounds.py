"""Indicator bounds (what a value can become before new data) and read-pattern independence.

The strategy runner skips steps on these bounds, so they must be certain: every value the
indicator takes over the horizon lies inside them, and a trade inside the recorded band leaves
them valid. The event log's sums are exact, so reading it often or rarely gives the same bits.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.indicators.pump import PumpMagnitude
from tui_trader.domain.indicators.registry import IndicatorSet
from tui_trader.domain.indicators.series import EventLog, Kind
from tui_trader.domain.indicators.twpa import Twpa
from tui_trader.domain.indicators.velocity import PriceVelocity
from tui_trader.domain.indicators.volume_surge import VolumeSurge
from tui_trader.domain.strategy.schema import PumpSpec, RsiSpec, SpreadSpec, TwpaSpec, VelocitySpec, VolumeSurgeSpec
from tui_trader.domain.events import BookTick, CandleClosed, TradeTick

T0 = 1_700_000_000_000
H = 30_000

trade_streams = st.lists(
    st.tuples(st.integers(1, 40_000), st.floats(0.5, 2.0, allow_nan=False)),
    min_size=1, max_size=120,
)


def _times(gaps: list[tuple[int, float]]) -> list[tuple[int, float]]:
    t, out = T0, []
    for gap, price in gaps:
        t += gap
        out.append((t, price))
    return out


def _log_until(gaps: list[tuple[int, float]], now_offset: int, kind: Kind) -> tuple[EventLog, int] | None:
    """A log holding the stream's events up to `T0 + now_offset`, advanced there (None: no event yet)."""
    now = T0 + now_offset
    seen = [tr for tr in _times(gaps) if tr[0] <= now]
    if not seen:
        return None
    log = EventLog(kind)
    for t, x in seen:
        log.add(t, x)
    return log, now


def _inside(value: float | None, rng: tuple[float, float] | None) -> bool:
    if value is None:
        return True  # undefined: no condition holds, whatever the bounds say
    assert rng is not None, "a defined value under 'undefined throughout'"
    slack = 1e-9 * max(1.0, abs(rng[0]), abs(rng[1]))
    return rng[0] - slack <= value <= rng[1] + slack


@settings(max_examples=150, deadline=None)
@given(trade_streams, st.integers(0, 2_000_000), st.lists(st.integers(0, H), min_size=1, max_size=12))
def test_values_over_the_horizon_stay_inside_the_bounds(gaps, now_offset, probes):
    made = _log_until(gaps, now_offset, Kind.STEP)
    if made is None:
        return
    log, now = made
    inds = [Twpa(log, (300, 0)), PumpMagnitude(log, (60, 0), (1800, 1740)), PriceVelocity(log)]
    log.advance(now)
    bounds = [ind.bounds(now, H) for ind in inds]
    for dt in sorted(probes):
        log.advance(now + dt)
        for ind, rng in zip(inds, bounds):
            assert _inside(ind.value(now + dt), rng), (type(ind).__name__, dt, ind.value(now + dt), rng)


@settings(max_examples=500, deadline=None)
@given(trade_streams, st.integers(0, 2_000_000), st.sampled_from([">=", "<="]), st.floats(0.001, 5.0),
       st.sampled_from(["pump", "velocity", "twpa"]),
       st.lists(st.tuples(st.integers(0, H), st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1))), min_size=1, max_size=8))
def test_trades_inside_the_trade_band_keep_an_impossible_condition_impossible(gaps, now_offset, op, gap, name, later):
    """Any number of later trades priced inside the band leave `value op threshold` false throughout."""
    trades = _times(gaps)
    now = T0 + now_offset
    seen = [tr for tr in trades if tr[0] <= now]
    if not seen:
        return
    specs = {"pump": PumpSpec(type="pump_magnitude_pct", current=(60, 0), baseline=(1800, 1740)),
             "velocity": VelocitySpec(type="price_velocity"), "twpa": TwpaSpec(type="twpa", window=(300, 0))}
    ind = IndicatorSet({name: specs[name]})
    for t, p in seen:
        ind.on_trade(t, p, 1.0)
    ind.values(now)
    rng = ind.bounds(name, now, H)
    if rng is None:
        return
    threshold = rng[1] + gap if op == ">=" else rng[0] - gap  # just out of reach: the condition is impossible
    deps = ind.begin_bounds()
    ind.note_blocker(name, now, H, op, threshold)
    if not deps.low <= deps.high:
        return  # an empty band: any trade recomputes
    lo, hi = max(deps.low, 1e-6), min(deps.high, 1e6)
    probes = {now, now + H}
    for dt, frac in sorted(later):
        price = min(hi, lo + (hi - lo) * frac)  # (lo + (hi - lo) can round one ulp past hi)
        assert deps.keeps("trade", price)
        ind.on_trade(now + dt, price, 1.0)  # (a window never reads past its own end: adding first is fine)
        probes |= {now + dt + d for d in (0, 1_000, 5_000, 10_000, 20_000, 60_000)}
    for probe in sorted(p for p in probes if p <= now + H):
        value = ind.values(probe)[name]
        assert value is None or not (value >= threshold if op == ">=" else value <= threshold), (probe - now, value, threshold)


def test_a_trade_outside_the_band_or_a_read_event_ends_the_quiet():
    ind = IndicatorSet({"pump": PumpSpec(type="pump_magnitude_pct", current=(60, 0), baseline=(1800, 1740)),
                        "spread": SpreadSpec(type="spread_pct"), "rsi": RsiSpec(type="rsi")})
    for k in range(200):
        ind.on_trade(T0 + k * 15_000, 1.0 + (k % 3) * 0.01, 1.0)
    now = T0 + 199 * 15_000
    ind.values(now)
    deps = ind.begin_bounds()
    ind.note_blocker("pump", now, H, ">=", 7.0)
    # pump >= 7 needs the current window 7 % above the baseline's lowest price (1.0): a trade up to 1.07 keeps it out of reach
    assert deps.low == -math.inf and 1.0699 < deps.high < 1.07
    assert deps.keeps("trade", 1.0699) and not deps.keeps("trade", 1.0701) and not deps.keeps("trade", math.nan)
    assert deps.keeps("book") and deps.keeps("candle")  # pump reads neither
    ind.note_blocker("spread", now, H, "<=", 0.1)
    ind.note_blocker("rsi", now, H, ">=", 90)
    assert not deps.keeps("book") and not deps.keeps("candle")


def test_book_and_candle_indicators_are_constant_between_events():
    ind = IndicatorSet({"spread": SpreadSpec(type="spread_pct"), "rsi": RsiSpec(type="rsi")})
    ind.on_event(BookTick(T0, "X", 99.0, 101.0))
    for k in range(20):
        ind.on_event(CandleClosed(T0 + k * 60_000, "X", T0 + (k - 1) * 60_000, 60, 1, 1, 1, 1.0 + (k % 2), 1))
    ind.on_event(TradeTick(T0 + 20 * 60_000, "X", 1.0, 1.0, "buy"))
    now = T0 + 20 * 60_000
    values = ind.values(now)
    assert ind.bounds("rsi", now, H) == (values["rsi"], values["rsi"])
    assert ind.bounds("spread", T0 + 1000, H) is not None
    assert ind.bounds("spread", now, H) is None  # the book is older than max_age_s: undefined


def test_volume_surge_is_bounded_only_over_a_horizon_shorter_than_a_bucket():
    ind = IndicatorSet({"v": VolumeSurgeSpec(type="volume_surge_ratio")})  # buckets of 30 s
    for k in range(100):
        ind.on_trade(T0 + k * 15_000, 1.0, 5.0 + k % 4)
    now = T0 + 99 * 15_000
    ind.values(now)
    assert ind.bounds("v", now, 30_000) == (0.0, math.inf)
    low, high = ind.bounds("v", now, 15_000)
    assert 0 < low <= high < math.inf
    deps = ind.begin_bounds()
    ind.note_blocker("v", now, 15_000, ">=", high * 2)
    assert not deps.keeps("trade", 1.0)  # a blocking volume surge: any trade's volume matters


volume_streams = st.lists(st.tuples(st.integers(1, 20_000), st.floats(0.0, 50.0, allow_nan=False)), min_size=1, max_size=150)


@settings(max_examples=150, deadline=None)
@given(volume_streams, st.integers(0, 1_500_000), st.integers(0, 29_000), st.lists(st.integers(0, 29_000), min_size=1, max_size=10))
def test_volume_surge_values_over_the_horizon_stay_inside_the_bounds(gaps, now_offset, horizon, probes):
    made = _log_until(gaps, now_offset, Kind.POINT)
    if made is None:
        return
    log, now = made
    surge = VolumeSurge(log)
    log.advance(now)
    rng = surge.bounds(now, horizon)
    for dt in sorted(p for p in probes if p <= horizon):
        log.advance(now + dt)
        assert _inside(surge.value(now + dt), rng), (dt, surge.value(now + dt), rng)


def test_log_values_do_not_depend_on_how_often_it_is_read():
    """Exact sums: a log read every second gives bit-for-bit the values of one read every 10 minutes."""
    rng = random.Random(7)
    busy, lazy, vbusy, vlazy = EventLog(Kind.STEP), EventLog(Kind.STEP), EventLog(Kind.POINT), EventLog(Kind.POINT)
    ind_busy = [PumpMagnitude(busy, (60, 0), (1800, 1740)), PriceVelocity(busy), VolumeSurge(vbusy)]
    ind_lazy = [PumpMagnitude(lazy, (60, 0), (1800, 1740)), PriceVelocity(lazy), VolumeSurge(vlazy)]
    price, compared = 100.0, 0
    for k in range(4_000):
        t = T0 + k * 15_000
        price *= math.exp(rng.gauss(0, 0.003))
        qty = rng.expovariate(1.0) * 10
        for log, x in ((busy, price), (lazy, price), (vbusy, qty), (vlazy, qty)):
            log.add(t, x)
        for s in range(t, t + 15_000, 1_000):  # the runner's 1 s steps
            busy.advance(s)
            vbusy.advance(s)
            busy_values = [i.value(s) for i in ind_busy]
        if k % 40 == 39:  # every 10 minutes
            s = t + 14_000
            lazy.advance(s)
            vlazy.advance(s)
            assert [i.value(s) for i in ind_lazy] == busy_values, k
            compared += 1
    assert compared == 100


def test_absurd_prints_are_ignored_and_cannot_corrupt_the_exact_sums():
    ind = IndicatorSet({"pump": PumpSpec(type="pump_magnitude_pct", current=(60, 0), baseline=(1800, 1740)),
                        "v": VolumeSurgeSpec(type="volume_surge_ratio")})
    for k in range(10):
        ind.on_trade(T0 + k * 15_000, 1.0, 2.0)
    for price, qty in ((1e300, 1.0), (1.0, 1e300), (math.inf, 1.0), (math.nan, 1.0), (1.0, -1.0)):
        ind.on_trade(T0 + 200_000, price, qty)
    assert len(ind.prices) == len(ind.volumes) == 10 and ind.last_price == 1.0
    log = EventLog(Kind.STEP)
    log.add(T0, 1.0)
    for bad in (1e300, math.inf, math.nan):
        with pytest.raises((OverflowError, ValueError)):
            log.add(T0 + 1, bad)
    assert (log._t, log._x, log._xi, log._c) == ([T0], [1.0], [int(1.0 * 2.0**128)], [0])  # untouched


def test_a_checkpoint_from_before_the_exact_sums_is_upgraded_on_load():
    """Session checkpoints pickle the indicators; an older one (float sums, no exact ints, no
    QuietDeps) resumes with the values of a log that never stopped."""
    import pickle

    def fresh() -> IndicatorSet:
        ind = IndicatorSet({"pump": PumpSpec(type="pump_magnitude_pct", current=(60, 0), baseline=(1800, 1740)),
                            "v": VolumeSurgeSpec(type="volume_surge_ratio")})
        for k in range(300):
            ind.on_trade(T0 + k * 15_000, 1.0 + (k % 7) * 0.01, 1.0 + k % 3)
            ind.values(T0 + k * 15_000)
        return ind

    old = fresh()
    del old.deps
    for log in (old.prices, old.volumes):  # what the previous version stored
        del log._xi
        log._c = [float(c) / 2.0**128 for c in log._c]
    restored = pickle.loads(pickle.dumps(old))
    reference = fresh()
    now = T0 + 300 * 15_000
    for ind in (restored, reference):
        ind.on_trade(now, 1.05, 2.0)
    assert dict(restored.values(now + 1_000).items()) == dict(reference.values(now + 1_000).items())
    assert restored.begin_bounds().keeps("trade", 1.0)
