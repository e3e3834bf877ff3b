"""The bar-mode indicator set: closed candles of its interval counted once, and `extend` (many bars
at once, for backtests that replay no event for them) leaving every value bit for bit as
`on_bar` one by one would."""

from __future__ import annotations

import math
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.events import CandleClosed, TradeTick
from tui_trader.domain.indicators.bar_set import BarIndicatorSet
from tui_trader.domain.strategy.schema import (
    BarChangeSpec,
    BarEmaSpec,
    BarRollingSpec,
    BarRsiSpec,
    BarSmaSpec,
    BarVolumeSurgeSpec,
)

SPECS = {
    "min": BarRollingSpec(type="bar_rolling", stat="min", field="low", bars=7, offset=2),
    "max": BarRollingSpec(type="bar_rolling", stat="max", field="high", bars=5),
    "mean": BarRollingSpec(type="bar_rolling", stat="mean", field="close", bars=6, offset=1),
    "sum": BarRollingSpec(type="bar_rolling", stat="sum", field="volume", bars=4),
    "sma": BarSmaSpec(type="bar_sma", field="close", bars=3),
    "ema": BarEmaSpec(type="bar_ema", field="close", bars=4),
    "rsi": BarRsiSpec(type="bar_rsi", field="close", period=5),
    "pump": BarChangeSpec(type="bar_change_from_low", field="close", bars=6),
    "dump": BarChangeSpec(type="bar_change_from_high", field="close", bars=6),
    "surge": BarVolumeSurgeSpec(type="bar_volume_surge", recent=2, base=5),
}

price = st.floats(min_value=0.5, max_value=2.0, allow_nan=False)
volume = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1e4, allow_nan=False))
bars_st = st.lists(st.tuples(price, price, price, price, volume), min_size=1, max_size=80)


def _bits(values: dict) -> dict:
    return {k: None if v is None else math.copysign(1, v) * abs(v) for k, v in values.items()}


@settings(max_examples=150, deadline=None)
@given(rows=bars_st, cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6))
def test_extend_equals_bar_by_bar(rows, cuts):
    one, many = BarIndicatorSet(SPECS, 60), BarIndicatorSet(SPECS, 60)
    opens = [i * 60_000 for i in range(len(rows))]
    for t, (o, h, low, c, v) in zip(opens, rows):
        one.on_bar(t, o, h, low, c, v)
    edges = sorted({0, len(rows), *(c for c in cuts if c <= len(rows))})
    for a, b in zip(edges, edges[1:]):
        if b - a == 1 and a % 2:  # mix both ways in
            many.on_bar(opens[a], *rows[a])
            continue
        cols = {f: [r[k] for r in rows[a:b]] for k, f in enumerate(("open", "high", "low", "close", "volume"))}
        many.extend(opens[a:b], cols)
    assert many.bars == one.bars == len(rows)
    assert many.last_price == one.last_price and many.last_open_ms == one.last_open_ms
    assert _bits(many.values()) == _bits(one.values())
    # and they go on alike
    for k in range(12):
        row = rows[k % len(rows)]
        t = opens[-1] + (k + 1) * 60_000
        one.on_bar(t, *row)
        many.on_bar(t, *row)
        assert repr(many.values()) == repr(one.values())


def test_only_closed_candles_of_its_interval_are_counted_once():
    bars = BarIndicatorSet({"sma": SPECS["sma"]}, 60)
    assert not bars.on_event(TradeTick(1, "X", 1.0, 1.0, "buy"))
    assert not bars.on_event(CandleClosed(300_000, "X", 0, 300, 1, 1, 1, 1, 1))  # a 5 m candle
    for i, close in enumerate((1.0, 2.0, 3.0)):
        assert bars.on_event(CandleClosed((i + 1) * 60_000, "X", i * 60_000, 60, close, close, close, close, 1))
    assert not bars.on_event(CandleClosed(180_000, "X", 120_000, 60, 9, 9, 9, 9, 1))  # pushed twice
    assert bars.values() == {"sma": 2.0} and bars.bars == 3 and bars.last_price == 3.0


def test_a_silent_base_meets_any_surge_as_a_finite_value():
    bars = BarIndicatorSet({"surge": SPECS["surge"]}, 60)
    for i in range(6):
        bars.on_bar(i * 60_000, 1, 1, 1, 1, 0.0)
    bars.on_bar(6 * 60_000, 1, 1, 1, 1, 5.0)
    assert bars.values()["surge"] == sys.float_info.max  # finite: >= any threshold, <= none


def test_extend_refuses_bars_already_counted():
    bars = BarIndicatorSet({"sma": SPECS["sma"]}, 60)
    bars.on_bar(60_000, 1, 1, 1, 1, 1)
    try:
        bars.extend([60_000], {f: [1.0] for f in ("open", "high", "low", "close", "volume")})
    except ValueError as exc:
        assert "not after the last counted one" in str(exc)
    else:
        raise AssertionError("a bar counted twice")
