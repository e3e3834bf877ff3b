"""IndicatorSet: builds only what the sections use, shares one log per input, never yields NaN."""

from __future__ import annotations

import math

from tests.domain.strategy.helpers import strategy
from tui_trader.domain.events import BookTick, CandleClosed, TradeTick
from tui_trader.domain.indicators.pump import PumpMagnitude
from tui_trader.domain.indicators.registry import IndicatorSet
from tui_trader.domain.indicators.volume_surge import CandleVolumeSurge

T0 = 1_700_000_000_000


def test_only_used_market_indicators_are_built():
    ind = IndicatorSet.for_strategy(strategy())
    assert set(ind.indicators) == {"pump", "vsurge", "velocity", "rsi", "spread"}  # pnl and mri: the machine's
    s1_only = strategy(
        s1_signal={"conditions": [{"indicator": "spread_pct", "operator": "<", "value": 1}]},
        o1_cancel={}, z1_entry={"order": {"size_pct": 5, "leverage": 2, "stop_loss_pct": 5, "take_profit_pct": 10}},
        ze1_close={}, emergency_exit={},
    )  # fmt: skip
    ind = IndicatorSet.for_strategy(s1_only)
    assert list(ind.indicators) == ["spread_pct"]
    for k in range(5000):  # no reader: the logs keep only the newest trade
        ind.on_event(TradeTick(T0 + k, "X", 1.0, 1.0))
        ind.values(T0 + k)
    assert len(ind.prices) == 1


def test_instances_share_one_price_log():
    ind = IndicatorSet.for_strategy(strategy())
    assert isinstance(ind.indicators["pump"], PumpMagnitude)
    assert ind.indicators["pump"].current.prices is ind.indicators["velocity"].current.prices


def test_bad_prints_are_ignored_and_values_are_finite_or_none():
    ind = IndicatorSet.for_strategy(strategy())
    for k in range(2000):
        t = T0 + k * 1000
        ind.on_event(TradeTick(t, "X", 1.0 + (k % 5) / 100, 2.0))
        ind.on_event(TradeTick(t, "X", math.nan, 1.0))
        ind.on_event(TradeTick(t, "X", 1.0, math.inf))
        ind.on_event(BookTick(t, "X", 0.999, 1.001))
        if k % 60 == 59:
            ind.on_event(CandleClosed(t + 1, "X", t - 59_000, 60, 1.0, 1.04, 1.0, 1.0 + (k % 7) / 100, 120.0))
        values = ind.values(t + 1)
    assert all(v is None or math.isfinite(v) for v in values.values())
    assert all(values[name] is not None for name in ("pump", "vsurge", "velocity", "rsi", "spread"))
    assert ind.last_price == 1.0 + (1999 % 5) / 100


def test_candle_source_for_volume_surge():
    indicators = strategy().model_dump()["indicators"]
    indicators["vsurge"] = {"type": "volume_surge_ratio", "source": "candles", "candles": 3}
    s = strategy(indicators=indicators)
    ind = IndicatorSet.for_strategy(s)
    assert isinstance(ind.indicators["vsurge"], CandleVolumeSurge)
    for k, vol in enumerate((10.0, 20.0, 30.0, 80.0)):
        ind.on_event(CandleClosed(T0 + (k + 1) * 60_000, "X", T0 + k * 60_000, 60, 1, 1, 1, 1, vol))
    assert ind.values(T0 + 240_000)["vsurge"] == 4.0
