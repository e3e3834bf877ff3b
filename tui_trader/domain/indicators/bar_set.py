"""Domain layer: the bar indicators of a bar-mode strategy (`evaluation = "bar"`), for one symbol.

The counterpart of `IndicatorSet` for strategies stepped on closed candles: it is fed the closed
candles of the strategy's interval (`CandleClosed`, `CandlesClosed`; candles of other intervals
and every tick are ignored) and answers `values()` - each named bar indicator after the newest
bar. Bars are counted, not timed (`bars.py`): a candle whose open time is not after the last
one's (a repeated kline push, history overlapping the stream) is not counted twice.

Values are finite floats or None: a volume surge over a silent base (+inf in `bars.py`: "any
surge is met") is handed on as the largest float, which meets every finite `>=` / `>` threshold
and no `<=` / `<` one, as +inf would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from tui_trader.domain.events import CandleClosed, CandlesClosed, Event
from tui_trader.domain.indicators import bars
from tui_trader.domain.strategy.schema import (
    MACHINE_OWNED,
    BarChangeSpec,
    BarEmaSpec,
    BarRollingSpec,
    BarRsiSpec,
    BarSmaSpec,
    BarVolumeSurgeSpec,
    Model,
    Strategy,
)

FIELDS = ("open", "high", "low", "close", "volume")
_BIG = sys.float_info.max


class BarIndicator(Protocol):
    def update(self, x: float) -> None: ...

    @property
    def value(self) -> float | None: ...


def bar_indicator(spec: Model) -> tuple[BarIndicator, int]:
    """The incremental indicator a bar spec means, and how many bars it needs to be defined."""
    if isinstance(spec, BarRollingSpec):
        kinds: dict[str, Callable[[int, int], BarIndicator]] = {
            "min": bars.RollingMin, "max": bars.RollingMax, "mean": bars.RollingMean, "sum": bars.RollingSum}
        return kinds[spec.stat](spec.bars, spec.offset), spec.bars + spec.offset
    if isinstance(spec, BarSmaSpec):
        return bars.Sma(spec.bars), spec.bars
    if isinstance(spec, BarEmaSpec):
        return bars.Ema(spec.bars), spec.bars
    if isinstance(spec, BarRsiSpec):
        return bars.Rsi(spec.period), spec.period + 1
    if isinstance(spec, BarChangeSpec):
        cls2 = bars.ChangeFromLow if spec.type == "bar_change_from_low" else bars.ChangeFromHigh
        return cls2(spec.bars), spec.bars + 1
    if isinstance(spec, BarVolumeSurgeSpec):
        return bars.VolumeSurge(spec.recent, spec.base), spec.recent + spec.base
    raise TypeError(f"{type(spec).__name__} is not a bar indicator")


class BarIndicatorSet:
    """A bar-mode strategy's indicators for one symbol: closed candles in, `values()` out."""

    def __init__(self, specs: dict[str, Model], interval_s: int) -> None:
        self.interval_s = interval_s
        self.specs = specs
        self.indicators: dict[str, BarIndicator] = {}
        self._feeds: list[tuple[int, Callable[[float], None]]] = []  # (field index, update)
        self._windows: dict[str, int] = {}  # name -> bars its state depends on (window indicators only)
        need = 0
        for name, spec in specs.items():
            ind, bars_needed = bar_indicator(spec)
            self.indicators[name] = ind
            self._feeds.append((FIELDS.index(spec.field), ind.update))  # type: ignore[attr-defined]
            if not hasattr(ind, "extend"):
                self._windows[name] = bars_needed
            need = max(need, bars_needed)
        self.longest_s = float(need * interval_s)  # history that defines every value
        self.bars = 0  # closed bars counted so far
        self.last_open_ms: int | None = None
        self.last_event_ms: int | None = None  # close time of the newest bar
        self.last_price: float | None = None  # its close

    @classmethod
    def for_strategy(cls, strategy: Strategy) -> BarIndicatorSet:
        used = {n: s for n, s in strategy.used_indicators().items() if getattr(s, "type", "") not in MACHINE_OWNED}
        return cls(used, strategy.bar_interval_s)

    def on_event(self, event: Event) -> bool:
        """Count a closed candle of this set's interval (True), else ignore the event (False)."""
        if isinstance(event, CandleClosed):
            if event.interval_s != self.interval_s:
                return False
            return self.on_bar(event.open_ms, event.open, event.high, event.low, event.close, event.volume)
        if isinstance(event, CandlesClosed) and event.interval_s == self.interval_s:
            counted = False
            for c in event.candles:
                counted = self.on_bar(c[0], c[1], c[2], c[3], c[4], c[5]) or counted
            return counted
        return False

    def on_bar(self, open_ms: int, o: float, h: float, low: float, c: float, v: float) -> bool:
        """One closed bar (False: not after the last one, not counted)."""
        if self.last_open_ms is not None and open_ms <= self.last_open_ms:
            return False
        row = (o, h, low, c, v)
        for field, update in self._feeds:
            update(row[field])
        self.bars += 1
        self.last_open_ms, self.last_event_ms, self.last_price = open_ms, open_ms + self.interval_s * 1000, c
        return True

    def extend(self, open_ms: Sequence[int], columns: Mapping[str, Sequence[float]]) -> None:
        """Count many closed bars at once (open times ascending, after the last counted one; one
        sequence per OHLCV field, as `on_bar` would take them one by one) - with the same values
        after it, bit for bit (tested). A window indicator's state depends on its last bars
        only: one that is handed more is rebuilt from those; a recurrence (EMA, RSI) runs its
        tight loop over all of them. For backtests that replay no event for most bars."""
        count = len(open_ms)
        if count == 0:
            return
        first = int(open_ms[0])
        if self.last_open_ms is not None and first <= self.last_open_ms:
            raise ValueError(f"bars from {first} are not after the last counted one ({self.last_open_ms})")
        feeds: list[tuple[int, Callable[[float], None]]] = []
        for name, spec in self.specs.items():
            col = columns[spec.field]  # type: ignore[attr-defined]
            window = self._windows.get(name)
            if window is None:
                self.indicators[name].extend(_floats(col, 0, count))  # type: ignore[attr-defined]
            elif count > window:
                fresh, _ = bar_indicator(spec)  # the last `window` bars make the same state
                for x in _floats(col, count - window, count):
                    fresh.update(x)
                self.indicators[name] = fresh
            else:
                for x in _floats(col, 0, count):
                    self.indicators[name].update(x)
            feeds.append((FIELDS.index(spec.field), self.indicators[name].update))  # type: ignore[attr-defined]
        self._feeds = feeds
        self.bars += count
        last = int(open_ms[-1])
        self.last_open_ms, self.last_event_ms = last, last + self.interval_s * 1000
        self.last_price = float(columns["close"][count - 1])

    def values(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, ind in self.indicators.items():
            v = ind.value
            out[name] = _BIG if v == float("inf") else v
        return out


def _floats(col: Sequence[float], start: int, stop: int) -> list[float]:
    """Python floats of col[start:stop] (a numpy column's `tolist()`: the same values, faster maths)."""
    part = col[start:stop]
    tolist = getattr(part, "tolist", None)
    return tolist() if tolist is not None else [float(x) for x in part]
