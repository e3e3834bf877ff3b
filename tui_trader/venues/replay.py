"""Venues layer: replays recorded 1-minute candles as live-like market data.

Each candle becomes up to four trade ticks in the conventional OHLC order: the open; then, for a
rising candle (close >= open) the low before the high, for a falling candle the high before the
low; then the close. Ticks
are spread evenly over the candle (open at +0, the extremes at +1/4 and +1/2, the close at +3/4 of
the interval) and a `CandleClosed` follows at the candle's end. With `ticks_per_candle` 1 only the
close is sent; 2 sends open and close; 3 adds the first extreme.

Every tick is published as the same event types the live MEXC feed emits: `TradeTick` (volume
split evenly over the ticks), `MarkPriceTick` (recorded candles have no fair price, so the trade
price stands in for it) and `BookTick` with a configured synthetic spread around the price (bar
data has no book; the spread is an assumption made explicit). Event timestamps are the *data*
time, which is the strategy's notion of now; with `data_clock` (a `SimClock`) the feed also moves
that clock to each tick's time before publishing it, so every timer of the trading components runs
on data time while `clock` paces the replay in wall time.

Pacing: `speed` 1 = real time, N = N times faster, 0 = as fast as possible (yielding to the loop
every few hundred ticks so nothing else starves). Pacing is measured against the start, so it does
not drift. With `backpressure` (execution), the feed waits after a tick until the work it started
(orders, fills, closes) is done, so a replay at full speed trades exactly like a backtest. `start_after_ms` skips candles already processed (session resume).
"""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from pathlib import Path
from typing import Protocol

from tui_trader.domain.events import BookTick, CandleClosed, FeedStateChanged, MarkPriceTick, TradeTick
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock, SimClock
from tui_trader.venues.candle_files import Candle, detect_interval_s, read_candles, symbol_from_filename

log = logging.getLogger(__name__)

BUNDLED_SAMPLE = "bittrex_NXT-BTC_1m_20171130-20171210.csv.gz"


def bundled_data_path(name: str = BUNDLED_SAMPLE) -> Path:
    """Path of a data file shipped inside the package (see `tui_trader/data/SOURCE.md`)."""
    return Path(str(resources.files("tui_trader") / "data" / name))


def candle_ticks(c: Candle, n: int = 4) -> tuple[float, ...]:
    """Trade prices a candle is replayed as (see the module docstring for the order)."""
    if c.close >= c.open:
        first, second = c.low, c.high
    else:
        first, second = c.high, c.low
    if n >= 4:
        return (c.open, first, second, c.close)
    if n == 3:
        return (c.open, first, c.close)
    if n == 2:
        return (c.open, c.close)
    return (c.close,)


class Backpressure(Protocol):
    """Execution's view for the feed: is anything a tick started still pending? wait for it."""

    def has_work(self) -> bool: ...

    async def idle(self) -> None: ...


class ReplayFeed:
    """A `Service` publishing recorded candles as ticks on the bus."""

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        path: Path | str,
        *,
        symbol: str | None = None,
        speed: float = 60.0,
        ticks_per_candle: int = 4,
        spread_bps: float = 10.0,
        loop: bool = False,
        start_after_ms: int = 0,
        name: str = "replay",
        data_clock: SimClock | None = None,
        backpressure: "Backpressure | None" = None,
    ) -> None:
        self.bus = bus
        self.clock = clock  # paces the replay (wall time)
        self.data_clock = data_clock  # moved to each tick's data time: the trading components' "now"
        self.backpressure = backpressure  # lets execution finish what a tick started before the next one
        self.path = Path(path)
        self.symbol = symbol or symbol_from_filename(self.path)
        self.speed = speed
        self.ticks_per_candle = ticks_per_candle
        self.half_spread = spread_bps / 20_000.0
        self.loop = loop
        self.start_after_ms = start_after_ms
        self.name = name
        self.interval_s = detect_interval_s(self.path)
        self.cursor_ms = start_after_ms  # open time of the last candle fully published
        self.candles_published = 0
        self.state = "idle"

    def first_ts_ms(self) -> int:
        """Time of the first tick this feed will publish (start a data clock just before it)."""
        for candle in read_candles(self.path):
            if candle.ts_ms > self.start_after_ms:
                return candle.ts_ms
        return self.start_after_ms

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.bus.publish(FeedStateChanged(self.clock.now_ms(), feed=self.name, state=state, detail=detail))

    async def run(self) -> None:
        self._set_state("replaying", f"{self.path.name} as {self.symbol} at {self._speed_text()}")
        try:
            while True:
                await self._replay_once()
                if not self.loop:
                    break
                self.start_after_ms = 0
            self._set_state("finished", f"{self.candles_published} candles")
        except asyncio.CancelledError:
            self._set_state("stopped", f"after {self.candles_published} candles")
            raise

    def _speed_text(self) -> str:
        return "full speed" if self.speed <= 0 else f"{self.speed:g}x"

    async def _replay_once(self) -> None:
        interval_ms = self.interval_s * 1000
        n = self.ticks_per_candle
        offsets = [i * interval_ms // 4 for i in range(4)][:n] if n > 1 else [interval_ms * 3 // 4]
        publish = self.bus.publish
        sym = self.symbol
        hs = self.half_spread
        advance = self.data_clock.advance_to if self.data_clock is not None else None
        bp = self.backpressure
        start_wall: float | None = None
        start_data = 0
        since_yield = 0
        for candle in read_candles(self.path):
            if candle.ts_ms <= self.start_after_ms:
                continue
            prices = candle_ticks(candle, n)
            qty = candle.volume / len(prices)
            for offset, price in zip(offsets, prices):
                ts = candle.ts_ms + offset
                if self.speed > 0:
                    if start_wall is None:
                        start_wall, start_data = self.clock.time(), ts
                    delay = start_wall + (ts - start_data) / 1000.0 / self.speed - self.clock.time()
                    if delay > 0.001:
                        await self.clock.sleep(delay)
                        since_yield = 0
                if advance is not None:
                    advance(ts)  # timers due before this tick fire first
                publish(BookTick(ts, sym, price * (1 - hs), price * (1 + hs)))
                publish(TradeTick(ts, sym, price, qty, "buy" if price >= candle.open else "sell"))
                publish(MarkPriceTick(ts, sym, price))
                if bp is not None and bp.has_work():
                    await bp.idle()
            close_ts = candle.ts_ms + interval_ms
            if advance is not None:
                advance(close_ts)
            publish(CandleClosed(close_ts, sym, candle.ts_ms, self.interval_s, candle.open, candle.high, candle.low, candle.close, candle.volume))
            if bp is not None and bp.has_work():
                await bp.idle()
            self.cursor_ms = candle.ts_ms
            self.candles_published += 1
            since_yield += 1
            if since_yield >= 256:
                since_yield = 0
                await asyncio.sleep(0)
