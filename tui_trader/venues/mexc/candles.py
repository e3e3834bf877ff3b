"""Venues layer: closed candles for strategies on the live MEXC feed - history at start, then the kline stream.

One source, the exchange's own 1-minute candles: `contract/kline` at start and `sub.kline` (Min1)
while running, so history and live bars are the same series (candles built from our trades would
differ from the exchange's by every deal missed in a reconnect).

* `KlineCloser`: `push.kline` repeats the candle in progress; a candle is closed when the first push
  of a later window arrives (typically within a second of the minute; in a minute without trades,
  at the next trade). A push for an older window, or a candle already closed (by history), is dropped.
* `HistoryWarmup` (a core service, started after the venue and before the strategy): reads enough
  closed candles for the strategy's longest window (its warm-up, RSI's period + 1 candles, volume
  baselines) and feeds them into the strategy's indicators as the replay would (four ticks and a
  close per candle: `intrabar.candle_events`) - into the indicators only, never onto the bus: the
  watchdog, the cache and the store must not see an hour-old price as the market. The machines'
  warm-up then counts from the first candle loaded: a strategy can trade minutes after start, not
  after its 30-minute warm-up. A failed read is a warning; the warm-up then happens live.
  The fair-price klines (`kline/fair_price`) are not read: no indicator reads the mark's history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from tui_trader.domain.errors import DataError, VenueError
from tui_trader.domain.events import CandleClosed, Event, StartupChecked
from tui_trader.domain.time_format import utc_hm
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock
from tui_trader.venues.candle_files import Candle
from tui_trader.venues.intrabar import candle_events

log = logging.getLogger(__name__)

INTERVAL_S = 60  # Min1: the timeframe the bundled strategies' candle indicators use
MARGIN_CANDLES = 5  # loaded beyond the longest window (a window's first candle is never cut)


class KlineCloser:
    """Turns the stream's candles in progress into `CandleClosed` events, each candle once."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[int, Candle]] = {}  # symbol -> (interval s, the candle in progress)
        self.closed_ms: dict[str, int] = {}  # symbol -> open time of the newest candle closed

    def seed(self, symbol: str, last_closed_open_ms: int) -> None:
        """History has closed candles up to this open time: the stream must not close them again."""
        self.closed_ms[symbol] = max(self.closed_ms.get(symbol, last_closed_open_ms), last_closed_open_ms)

    def update(self, symbol: str, interval_s: int, candle: Candle) -> CandleClosed | None:
        held = self._open.get(symbol)
        if held is not None and candle.ts_ms < held[1].ts_ms:
            return None  # a late push for a window already left behind
        self._open[symbol] = (interval_s, candle)
        if held is None or candle.ts_ms == held[1].ts_ms:
            return None
        interval_s, done = held
        if done.ts_ms <= self.closed_ms.get(symbol, -1):
            return None
        self.closed_ms[symbol] = done.ts_ms
        return CandleClosed(done.ts_ms + interval_s * 1000, symbol, done.ts_ms, interval_s, done.open, done.high,
                            done.low, done.close, done.volume)


class KlineSource(Protocol):
    async def klines(self, symbol: str, start_s: int, end_s: int) -> list[Candle]: ...


class HistoryWarmup:
    """Loads each strategy symbol's recent candles into its indicators before the strategy starts."""

    name = "mexc-history"

    def __init__(self, venue: KlineSource, bus: EventBus, clock: Clock, *, symbols: Iterable[str],
                 lookback_s: Callable[[], float], warm: Callable[[str, list[Event], int], None],
                 closer: KlineCloser | None = None, page: int = 2000) -> None:
        self.venue, self.bus, self.clock = venue, bus, clock
        self.symbols = list(symbols)
        self.lookback_s, self.warm, self.closer, self.page = lookback_s, warm, closer, page
        self.loaded: dict[str, int] = {}  # symbol -> candles loaded

    async def start(self) -> None:
        for symbol in self.symbols:
            await self._load(symbol)

    async def _load(self, symbol: str) -> None:
        now_ms = self.clock.now_ms()
        candles_needed = int(self.lookback_s() // INTERVAL_S) + MARGIN_CANDLES
        try:
            candles = await self._read(symbol, now_ms, candles_needed)
        except (VenueError, DataError) as exc:
            log.warning("history of %s not loaded: %s", symbol, exc)
            self.bus.publish(StartupChecked(now_ms, "history", "warning",
                                            f"{symbol}: no history ({exc}); the strategy warms up live"))
            return
        if not candles:
            self.bus.publish(StartupChecked(now_ms, "history", "warning",
                                            f"{symbol}: the exchange has no candles; the strategy warms up live"))
            return
        events: list[Event] = []
        for c in candles:
            events.extend(candle_events(symbol, c, INTERVAL_S))
        self.warm(symbol, events, candles[0].ts_ms)
        if self.closer is not None:
            self.closer.seed(symbol, candles[-1].ts_ms)
        self.loaded[symbol] = len(candles)
        self.bus.publish(StartupChecked(now_ms, "history", "ok", f"{symbol}: {len(candles)} 1 m candles"
                                        f" {utc_hm(candles[0].ts_ms)}-{utc_hm(candles[-1].ts_ms + INTERVAL_S * 1000)}"))

    async def _read(self, symbol: str, now_ms: int, count: int) -> list[Candle]:
        """The `count` newest *closed* candles (the one in progress is left to the stream), paged."""
        end_s = now_ms // 1000
        start_s = end_s - count * INTERVAL_S - INTERVAL_S
        out: list[Candle] = []
        while start_s < end_s:
            chunk_end = min(end_s, start_s + self.page * INTERVAL_S)
            got = await self.venue.klines(symbol, start_s, chunk_end)
            out.extend(c for c in got if (not out or c.ts_ms > out[-1].ts_ms))
            start_s = got[-1].ts_ms // 1000 + INTERVAL_S if got else chunk_end + INTERVAL_S  # (a short page: on from its end)
        closed = [c for c in out if c.ts_ms + INTERVAL_S * 1000 <= now_ms]
        return closed[-count:]

    async def run(self) -> None:
        return None
