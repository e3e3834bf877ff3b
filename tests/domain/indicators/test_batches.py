"""Batched input (the backtest's stretches) records exactly what the same events one by one would.

`EventLog.extend`, `IndicatorSet.on_trades` and a `CandlesClosed` event are shortcuts for a
replay: their results must be bit-identical to `add` / `on_trade` / `CandleClosed` in a loop,
bad prints and out-of-order times included, or a backtest would drift from paper trading.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.events import CandleClosed, CandlesClosed
from tui_trader.domain.indicators.registry import IndicatorSet
from tui_trader.domain.indicators.series import EventLog, Kind
from tui_trader.domain.strategy.schema import PumpSpec, RsiSpec, VelocitySpec, VolumeSurgeSpec

T0 = 1_700_000_000_000

events = st.lists(st.tuples(st.integers(-5_000, 40_000), st.floats(0.001, 1e6, allow_nan=False)), max_size=30)
batches = st.lists(st.tuples(events, st.integers(0, 90_000)), min_size=1, max_size=6)


def _log_state(log: EventLog) -> dict:
    """Everything but `version`, a change token (one `extend` is one change, n `add`s are n)."""
    return {k: v for k, v in log.__dict__.items() if k != "version"}


def _pair(kind: Kind) -> tuple[EventLog, EventLog]:
    logs = EventLog(kind), EventLog(kind)
    for log in logs:
        log.edge(60_000)
        log.edge(0)
    return logs


@pytest.mark.parametrize("kind", list(Kind))
@settings(max_examples=150, deadline=None)
@given(batches=batches)
def test_extend_equals_add_one_by_one(kind, batches):
    """Gaps may be negative (out of order): those batches must take the clamping path."""
    one, many = _pair(kind)
    t = T0
    for batch, read_after in batches:
        times, xs = [], []
        for gap, x in batch:
            t += gap
            times.append(t)
            xs.append(x)
        for ts, x in zip(times, xs):
            one.add(ts, x)
        many.extend(times, xs)
        assert _log_state(one) == _log_state(many)
        if one._t:
            now = max(one._t) + read_after
            one.advance(now)
            many.advance(now)
            assert _log_state(one) == _log_state(many)


@pytest.mark.parametrize("bad", [math.nan, math.inf, 1e300])
def test_extend_raises_before_changing_anything(bad):
    log = EventLog(Kind.STEP)
    log.extend([T0, T0 + 1000], [1.0, 2.0])
    before = {k: list(v) if isinstance(v, list) else v for k, v in log.__dict__.items()}
    with pytest.raises((ValueError, OverflowError)):
        log.extend([T0 + 2000, T0 + 3000], [3.0, bad])
    assert log.__dict__ == before
    with pytest.raises((ValueError, OverflowError)):
        log.extend([T0 + 3000, T0 + 2000], [3.0, bad])  # out of order: the one-by-one path
    assert log.__dict__ == before


def _set() -> IndicatorSet:
    return IndicatorSet({
        "pump": PumpSpec(type="pump_magnitude_pct", current=(60, 0), baseline=(1800, 1740)),
        "velocity": VelocitySpec(type="price_velocity", current=(10, 0), baseline=(20, 10)),
        "vsurge": VolumeSurgeSpec(type="volume_surge_ratio", current=(30, 0), baseline=(600, 30), bucket_s=30),
        "rsi": RsiSpec(type="rsi", period=3, timeframe="1m"),
        "csurge": VolumeSurgeSpec(type="volume_surge_ratio", source="candles", candles=3),
    })


def _state(s: IndicatorSet, now: int) -> tuple:
    values = s.values(now)
    return (_log_state(s.prices), _log_state(s.volumes), s.last_price, s.first_event_ms, s.last_event_ms,
            {name: values[name] for name in s.indicators})


@settings(max_examples=100, deadline=None)
@given(trades=st.lists(st.tuples(st.integers(0, 20_000), st.sampled_from([1.0, 1.05, 0.97, 2.0, -1.0, math.nan, math.inf, 1e250]),
                                 st.sampled_from([0.0, 3.0, 10.0, -2.0, math.nan])), min_size=1, max_size=40))
def test_on_trades_equals_on_trade_one_by_one_bad_prints_included(trades):
    one, many = _set(), _set()
    t, times, prices, qtys = T0, [], [], []
    for gap, price, qty in trades:
        t += gap
        times.append(t)
        prices.append(price)
        qtys.append(qty)
    for ts, price, qty in zip(times, prices, qtys):
        one.on_trade(ts, price, qty)
    many.on_trades(times, prices, qtys)
    now = t + 1_000
    assert _state(one, now) == _state(many, now)


def test_candles_closed_equals_candle_closed_events():
    candles = [(T0 + i * 60_000, 10.0, 11.0, 9.0, 10.0 + (i % 3) * 0.5 - i * 0.1, 5.0 + i) for i in range(8)]
    one, many = _set(), _set()
    for c in candles:
        one.on_event(CandleClosed(c[0] + 60_000, "X", c[0], 60, *c[1:]))
    many.on_event(CandlesClosed(candles[-1][0] + 60_000, "X", 60, tuple(candles)))
    now = candles[-1][0] + 60_000
    assert one.values(now)["rsi"] is not None and one.values(now)["csurge"] is not None
    assert _state(one, now) == _state(many, now)


@settings(max_examples=100, deadline=None)
@given(batches=batches, probes=st.lists(st.integers(-10_000, 200_000), min_size=1, max_size=12))
def test_cums_at_agrees_with_sum_between(batches, probes):
    """`cums_at` (many edges at once, for the volume bounds) is the running sum `sum_between` differences."""
    log = EventLog(Kind.POINT)
    log.edge(30_000)
    t = T0
    for batch, read_after in batches:
        for gap, x in batch:
            t = max(t, t + gap)
            log.add(t, x)
        log.advance(t + read_after)
    edges = [T0 + p for p in probes]
    cums = log.cums_at(edges)
    for (a, ca) in zip(edges, cums):
        for (b, cb) in zip(edges, cums):
            if b > a:
                assert cb - ca == log.sum_between(a, b)
