"""Venues layer: closed candles for strategies on the live MEXC feed - history at start, then the kline stream.

One source, the exchange's own 1-minute candles: `contract/kline` at start and `sub.kline` (Min1)
while running, so history and live bars are the same series (candles built from our trades would
differ from the exchange's by every deal missed in a reconnect).

* `KlineCloser`: `push.kline` repeats the candle in progress; a candle is closed when the first push
  of a later window arrives (typically within a second of the minute; in a minute without trades,
  at the next trade). A push for an older window, or a candle already closed, is dropped. On every
  (re)connect the feed drops the candle in progress (its values stopped at the drop) and fetches the
  candles closed since the last one it has (`KlineCloser.backfill`), so a reconnect or the seconds
  between the history read and the first push leave no hole in the series.
* `HistoryWarmup` (a core service, started just before the strategy): reads enough closed candles
  for the strategy's longest window (its warm-up, RSI's period + 1 candles, volume baselines) and
  feeds them into the strategy's indicators as the replay would (four ticks and a close per candle:
  `intrabar.candle_events`) - into the indicators only, never onto the bus: the watchdog, the cache
  and the store must not see an hour-old price as the market. The machines' warm-up then counts
  from the first candle loaded: a strategy can trade minutes after start, not after its 30-minute
  warm-up. "Closed" is judged on the exchange's clock (`server_ms`). Symbols load concurrently,
  outside the entry breaker, within `timeout_s`; a failed read is a warning and that symbol's
  strategy warms up live. Candle indicators on another timeframe than 1 m get no candles live: a
  warning says so. The fair-price klines (`kline/fair_price`) are not read: no indicator reads the
  mark's history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from tui_trader.domain.errors import ConfigError, DataError, VenueError
from tui_trader.domain.events import CandleClosed, Event, StartupChecked
from tui_trader.domain.strategy.schema import Strategy
from tui_trader.domain.time_format import utc_hm
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock
from tui_trader.venues.candle_files import Candle
from tui_trader.venues.intrabar import candle_closed, candle_events
from tui_trader.venues.mexc import constants as C

log = logging.getLogger(__name__)

INTERVAL_S = 60  # Min1: the one candle interval the live feed carries


def check_live_bar_interval(strategy: Strategy | None) -> None:
    """A live bar-mode strategy must step on the klines the feed streams (1 minute), else it never steps."""
    if strategy is not None and strategy.bar_mode and strategy.bar_interval_s != INTERVAL_S:
        raise ConfigError(f"strategy {strategy.strategy_name}: bar_interval {strategy.bar_interval!r} - the live feed"
                          " streams 1-minute klines only; a live bar-mode strategy uses bar_interval = \"1m\"")
MARGIN_CANDLES = 5  # loaded beyond the longest window (a window's first candle is never cut)


def _closed_by(candles: list[Candle], now_ms: int) -> list[Candle]:
    """The candles whose minute has ended at `now_ms` (the exchange's clock)."""
    return [c for c in candles if c.ts_ms + INTERVAL_S * 1000 <= now_ms]


class KlineSource(Protocol):
    async def klines(self, symbol: str, start_s: int, end_s: int) -> list[Candle]: ...


class KlineCloser:
    """Turns the stream's candles in progress into `CandleClosed` events, each candle once, in order."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[int, Candle]] = {}  # symbol -> (interval s, the candle in progress)
        self.closed_ms: dict[str, int] = {}  # symbol -> open time of the newest candle closed

    def seed(self, symbol: str, last_closed_open_ms: int) -> None:
        """History has closed candles up to this open time: the stream must not close them again."""
        self.closed_ms[symbol] = max(self.closed_ms.get(symbol, last_closed_open_ms), last_closed_open_ms)

    def reset_open(self) -> None:
        """A reconnect: the candles in progress stopped updating at the drop; they come back closed from REST."""
        self._open.clear()

    def update(self, symbol: str, interval_s: int, candle: Candle) -> CandleClosed | None:
        held = self._open.get(symbol)
        if held is not None and candle.ts_ms < held[1].ts_ms:
            return None  # a late push for a window already left behind
        self._open[symbol] = (interval_s, candle)
        if held is None or candle.ts_ms == held[1].ts_ms:
            return None
        interval_s, done = held
        return self._close(symbol, interval_s, done)

    def _close(self, symbol: str, interval_s: int, done: Candle) -> CandleClosed | None:
        if done.ts_ms <= self.closed_ms.get(symbol, -1):
            return None
        self.closed_ms[symbol] = done.ts_ms
        return candle_closed(symbol, done, interval_s)

    async def backfill(self, source: KlineSource, server_ms: int) -> list[Event]:
        """The candles each seeded symbol closed since its newest one (after a reconnect, or between the
        history read and the first push), closed on the exchange's clock; failures are logged, not raised."""
        out: list[Event] = []
        for symbol, last_ms in list(self.closed_ms.items()):
            try:
                got = await source.klines(symbol, last_ms // 1000 + INTERVAL_S, server_ms // 1000)
            except (VenueError, DataError) as exc:
                log.warning("candles of %s since %s not fetched: %s", symbol, utc_hm(last_ms), exc)
                continue
            for c in _closed_by(got, server_ms):
                closed = self._close(symbol, INTERVAL_S, c)
                if closed is not None:
                    out.append(closed)
        return out


class HistoryWarmup:
    """Loads each strategy symbol's recent candles into its indicators before the strategy starts."""

    name = "mexc-history"

    def __init__(self, venue: KlineSource, bus: EventBus, clock: Clock, *, symbols: Iterable[str],
                 lookback_s: Callable[[], float], warm: Callable[[str, list[Event], int], None],
                 closer: KlineCloser | None = None, server_ms: Callable[[], int] | None = None,
                 notes: Iterable[str] = (), timeout_s: float = 20.0, page: int = C.KLINE_PAGE) -> None:
        self.venue, self.bus, self.clock = venue, bus, clock
        self.symbols = list(symbols)
        self.lookback_s, self.warm, self.closer, self.page = lookback_s, warm, closer, page
        self.server_ms = server_ms or clock.now_ms
        self.notes, self.timeout_s = list(notes), timeout_s
        self.loaded: dict[str, int] = {}  # symbol -> candles loaded

    async def start(self) -> None:
        for note in self.notes:
            self.bus.publish(StartupChecked(self.clock.now_ms(), "history", "warning", note))
        await asyncio.gather(*(self._load(symbol) for symbol in self.symbols))

    def _warn(self, symbol: str, why: str) -> None:
        log.warning("history of %s not loaded: %s", symbol, why)
        self.bus.publish(StartupChecked(self.clock.now_ms(), "history", "warning",
                                        f"{symbol}: {why}; the strategy warms up live"))

    async def _load(self, symbol: str) -> None:
        now_ms = self.server_ms()
        candles_needed = int(self.lookback_s() // INTERVAL_S) + MARGIN_CANDLES
        try:
            async with asyncio.timeout(self.timeout_s):  # (not wait_for: 3.11's can lose a cancellation)
                candles = await self._read(symbol, now_ms, candles_needed)
        except (VenueError, DataError) as exc:
            return self._warn(symbol, f"no history ({exc})")
        except TimeoutError:
            return self._warn(symbol, f"no history within {self.timeout_s:g} s")
        if not candles:
            return self._warn(symbol, "the exchange has no candles")
        events: list[Event] = []
        for c in candles:
            events.extend(candle_events(symbol, c, INTERVAL_S))
        self.warm(symbol, events, candles[0].ts_ms)
        if self.closer is not None:
            self.closer.seed(symbol, candles[-1].ts_ms)
        self.loaded[symbol] = len(candles)
        self.bus.publish(StartupChecked(self.clock.now_ms(), "history", "ok", f"{symbol}: {len(candles)} 1 m candles"
                                        f" {utc_hm(candles[0].ts_ms)}-{utc_hm(candles[-1].ts_ms + INTERVAL_S * 1000)}"))

    async def _read(self, symbol: str, now_ms: int, count: int) -> list[Candle]:
        """The `count` newest *closed* candles (the one in progress is left to the stream), paged: each
        call asks for `page` bar starts at most, both ends included, so no bar falls between pages."""
        end_s = now_ms // 1000
        start_s = (end_s - (count + 1) * INTERVAL_S) // INTERVAL_S * INTERVAL_S
        out: list[Candle] = []
        while start_s <= end_s:
            chunk_end = min(end_s, start_s + (self.page - 1) * INTERVAL_S)
            got = await self.venue.klines(symbol, start_s, chunk_end)
            out.extend(c for c in got if not out or c.ts_ms > out[-1].ts_ms)
            last_s = got[-1].ts_ms // 1000 if got else chunk_end  # a short page (a smaller cap): on from its end
            start_s = min(last_s, chunk_end) + INTERVAL_S
        return _closed_by(out, now_ms)[-count:]

    async def run(self) -> None:
        return None
