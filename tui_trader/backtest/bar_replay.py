"""Backtest layer: the bar-mode backtest's feed - candles from columns, most of them never replayed.

`BarReplay` publishes a bar exactly as `ReplayFeed(close_after_bar=True)` does (its open and two
extremes as book / trade / mark ticks, the `CandleClosed`, then its close traded; the data clock
moved to each, what a tick started finished before the next) - or, while nothing can happen
there, not at all. A bar is left out when all of these hold at its open:
* the venue has no position and no working order, and execution has nothing queued;
* every machine is MONITORING with no deadline due and no exit belonging to a bar still to come
  (the bar it blocks must be stepped);
* the pre-screen (`bar_screen.s1_may_fire`) says S1 cannot fire at its close;
* it is not the first bar (whose step starts the machine's warm-up).
Such a bar's step would change nothing, and while flat nobody else holds anything its prices
would change but the latest price. Its data still counts: the strategy's bar indicators take
the left-out bars in one `BarIndicatorSet.extend` (the same values, bit for bit), the recorder
counts them and samples the (flat, unchanged) equity where a sample falls, and the clock moves
over them firing every timer at its time. The next replayed bar brings every price up to date.

One engine decides every trade; this only chooses which bars it must see. Identical trades to
the plain replay: `tests/backtest/test_bar_mode.py` (random series and the real files) and
the benchmark (`bench/compare_engines.py`). Backtests only: the live and paper feeds replay every
bar (`ReplayFeed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tui_trader.domain.events import FeedStateChanged
from tui_trader.domain.indicators.bar_set import FIELDS, BarIndicatorSet
from tui_trader.domain.models import Side
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.venues.candle_files import Candle
from tui_trader.venues.intrabar import (
    bar_path,
    candle_closed,
    path_from,
    tick_offsets_ms,
    trade_events,
)

YIELD_EVERY = 256  # replayed bars between yields to the loop (progress reports, cancellation)


class BarReplay:
    """A `Service`: one symbol's candles (`CandleColumns`-like: ts, open ... volume arrays)."""

    def __init__(self, bus: EventBus, clock: SimClock, columns: Any, symbol: str, *, interval_s: int,
                 spread_bps: float, position_side: Callable[[str], Side | None], may_fire: np.ndarray | None = None,
                 name: str = "backtest") -> None:
        self.bus, self.clock, self.columns, self.name = bus, clock, columns, name
        self.symbol, self.symbols = symbol, [symbol]
        self.interval_s = interval_s
        self.half_spread = spread_bps / 20_000.0
        self.may_fire = may_fire  # None: replay every bar (no fast path)
        self.position_side = position_side  # the open position's side (the replay feed's tracker): the path's order
        self.backpressure: Any = None  # execution: what a tick started is sent before the next one
        self.venue_idle: Callable[[], bool] = lambda: False
        self.machines: Callable[[], Iterable[StrategyMachine]] = tuple  # the strategy runner's (live view)
        self.bar_sets: Callable[[], Iterable[BarIndicatorSet]] = tuple
        self.recorder: Any = None  # counts and samples the bars left out (`Recorder.skipped`)
        self.state = "idle"
        self.cursor_ms = 0  # open time of the last candle handled
        self.candles_published = 0  # candles handled (replayed or left out)
        self.replayed = 0  # of which replayed as events

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.bus.publish(FeedStateChanged(self.clock.now_ms(), feed=self.name, state=state, detail=detail))

    async def run(self) -> None:
        self._set_state("replaying", f"{len(self.columns.ts)} bars of {self.symbol} (bar mode)")
        try:
            await self._replay()
            self._set_state("finished", f"{self.candles_published} candles ({self.replayed} replayed)")
        except asyncio.CancelledError:
            self._set_state("stopped", f"after {self.candles_published} candles")
            raise

    async def shutdown(self) -> None:
        return None  # run() is the core's task: cancelling it stops the replay

    def _quiet(self) -> bool:
        """Nothing but the bar indicators can change on a bar S1 cannot fire at (module docstring)."""
        if not self.venue_idle() or (self.backpressure is not None and self.backpressure.has_work()):
            return False
        for m in self.machines():
            if m.phase is not Phase.MONITORING or m.state.exit_bar > m.bar or m.next_deadline_ms() is not None:
                return False
        return True

    async def _replay(self) -> None:
        cols, n = self.columns, len(self.columns.ts)
        may = self.may_fire
        keep = np.flatnonzero(may) if may is not None else None  # the bars S1 may fire at
        i, since_yield = 0, 0
        while i < n:
            if keep is not None and i > 0 and not may[i] and self._quiet():  # type: ignore[index]
                k = int(np.searchsorted(keep, i))
                j = int(keep[k]) if k < len(keep) else n
                self._leave_out(i, j)
                i = j
                continue
            await self._bar(Candle(int(cols.ts[i]), float(cols.open[i]), float(cols.high[i]), float(cols.low[i]),
                                   float(cols.close[i]), float(cols.volume[i])))
            i += 1
            since_yield += 1
            if since_yield >= YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)

    def _leave_out(self, i: int, j: int) -> None:
        """Bars i .. j-1: counted, not replayed (see the module docstring)."""
        cols = self.columns
        opens = cols.ts[i:j]
        fields = {f: getattr(cols, f)[i:j] for f in FIELDS}
        for bars in self.bar_sets():
            bars.extend(opens, fields)
        if self.recorder is not None:
            self.recorder.skipped(opens, self.interval_s * 1000)
        self.clock.advance_to(int(opens[-1]) + self.interval_s * 1000)
        self.cursor_ms = int(opens[-1])
        self.candles_published += j - i

    async def _wait(self) -> None:
        bp = self.backpressure
        if bp is not None and bp.has_work():
            await bp.idle()

    async def _bar(self, c: Candle) -> None:
        """One bar as `ReplayFeed(close_after_bar=True)` publishes it."""
        publish, sym, hs = self.bus.publish, self.symbol, self.half_spread
        interval_ms = self.interval_s * 1000
        path: tuple[float, ...] = ()
        qty = c.volume / 3
        for k, offset in enumerate(tick_offsets_ms(interval_ms, 3)):
            ts = c.ts_ms + offset
            self.clock.advance_to(ts)
            await self._wait()
            if k <= 1:  # the extremes' order is decided once the open tick has been handled
                path = bar_path(c, self.position_side(sym) if k == 1 else None)
            for ev in trade_events(sym, ts, path[k], qty, c.open, hs, path_from(path, k)):
                publish(ev)
            await self._wait()
        ts = c.ts_ms + interval_ms
        self.clock.advance_to(ts)
        await self._wait()
        publish(candle_closed(sym, c, self.interval_s))
        self.cursor_ms = c.ts_ms
        self.candles_published += 1
        self.replayed += 1
        await self._wait()
        for ev in trade_events(sym, ts, c.close, 0.0, c.open, hs, path[-1]):  # (from the last extreme)
            publish(ev)
        await self._wait()
