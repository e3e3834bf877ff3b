"""Engine layer: prices over REST for the watchdog when the stream goes quiet on a symbol it watches.

A stalled feed must not blind the watchdog (issue 19: a 25x short was liquidated during a 40 s ramp
while pongs kept the socket "alive"). When a symbol with a position has had no fair or last price for
`watchdog.stale_after_s`, its fair price is read over REST about once a second (the venue's
`fair_price`, outside the entry breaker) and published as a `MarkPriceTick`, so the watchdog, the
cache and the screen go on with it; `FeedStateChanged(feed="rest-prices")` says when this starts and
stops, with the age of the stream's last price. Venues without `fair_price` (paper, replay) are
never polled: their prices are the feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Set as AbstractSet
from typing import Any

from tui_trader.domain.errors import VenueError
from tui_trader.domain.events import FeedStateChanged, MarkPriceTick
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import Clock

log = logging.getLogger(__name__)

FEED = "rest-prices"


class RestPriceFallback:
    def __init__(self, bus: EventBus, clock: Clock, cache: Cache, venue: Any, stale_after_s: float) -> None:
        self.bus, self.clock, self.cache, self.venue = bus, clock, cache, venue
        self.stale_after_ms = round(stale_after_s * 1000)
        self.enabled = callable(getattr(venue, "fair_price", None))
        self.polling: set[str] = set()  # symbols currently priced over REST
        self._own_ms: dict[str, int] = {}  # the time of the last price we published per symbol (not the stream's)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.reads = 0

    def check(self, symbols: AbstractSet[str]) -> None:
        """Called about once a second by the watchdog with the symbols it watches."""
        if not self.enabled:
            return
        now = self.clock.now_ms()
        for symbol in symbols:
            age = now - self._stream_ms(symbol)
            if age < self.stale_after_ms:
                if symbol in self.polling:
                    self.polling.discard(symbol)
                    self.bus.publish(FeedStateChanged(now, FEED, "stopped", f"{symbol}: the stream prices it again"))
                continue
            if symbol not in self.polling:
                self.polling.add(symbol)
                self.bus.publish(FeedStateChanged(now, FEED, "polling", f"{symbol}: no stream price for"
                                                  f" {age / 1000:.1f} s - fair price over REST"))
            task = self._tasks.get(symbol)
            if task is None or task.done():
                self._tasks[symbol] = asyncio.get_running_loop().create_task(self._read(symbol),
                                                                             name=f"rest-price:{symbol}")
        for symbol in [s for s in self.polling if s not in symbols]:
            self.polling.discard(symbol)

    def _stream_ms(self, symbol: str) -> int:
        """Time of the stream's latest price (fair or last), ignoring the ones this fallback published."""
        mark, last = self.cache.mark.get(symbol), self.cache.last.get(symbol)
        mark_ms = mark[1] if mark is not None and mark[1] != self._own_ms.get(symbol) else 0
        return max(mark_ms, last[1] if last is not None else 0)

    async def _read(self, symbol: str) -> None:
        try:
            price = await self.venue.fair_price(symbol)
        except VenueError as exc:
            log.warning("REST fair price of %s failed: %s", symbol, exc)
            return
        self.reads += 1
        now = self.clock.now_ms()
        self._own_ms[symbol] = now
        self.bus.publish(MarkPriceTick(now, symbol, float(price), source="rest"))

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
