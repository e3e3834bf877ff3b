"""Venues layer: `MexcFeed` - the public market-data stream (deals, ticker, depth, klines) for the symbols.

A core Service (`name`, `run()`, `shutdown()`). Subscribes with `"gzip": false` (binary gzip
frames are handled anyway) to `deal`, `ticker` (fair price, top of book, funding rate),
`depth.full` top-5 snapshots and `kline` Min1, and re-subscribes on every reconnect. Publishes
TradeTick, MarkPriceTick, BookTick, FundingRateUpdated, CandleClosed (each 1-minute candle once,
when the stream moves to the next window: `candles.KlineCloser`) and FeedStateChanged(feed="mexc").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from tui_trader.domain.events import Event
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc.candles import KlineCloser, KlineSource
from tui_trader.venues.mexc.parse import kline_push
from tui_trader.venues.mexc.ws_session import WsSession


def subscriptions(symbols: list[str]) -> list[dict[str, Any]]:
    """The subscribe messages for `symbols` (plain-text frames requested)."""
    out: list[dict[str, Any]] = []
    for s in symbols:
        out.append({"method": "sub.deal", "param": {"symbol": s}, "gzip": False})
        out.append({"method": "sub.ticker", "param": {"symbol": s}, "gzip": False})
        out.append({"method": "sub.depth.full", "param": {"symbol": s, "limit": C.DEPTH_FULL_LIMIT}, "gzip": False})
        out.append({"method": "sub.kline", "param": {"symbol": s, "interval": "Min1"}, "gzip": False})
    return out


class MexcFeed(WsSession):
    """Public stream for `symbols`; `resync` (e.g. `MexcVenue.resync`) runs after each reconnect."""

    def __init__(self, *args: Any, symbols: list[str], **kwargs: Any) -> None:
        kwargs.setdefault("name", "mexc-feed")
        super().__init__(*args, **kwargs)
        self.data_stall_s = self.config.ws_data_stall_s  # market data is expected here: silence is a stall
        self.symbols = list(symbols)
        self.sub_errors: list[str] = []
        self.candles = KlineCloser()
        self.klines: KlineSource | None = None  # REST candles for the gaps a (re)connect leaves (the venue)
        self.server_ms: Callable[[], int] = self.clock.now_ms  # the exchange's clock (the REST offset)

    def events_of(self, msg: dict[str, Any]) -> list[Event]:
        if msg.get("channel") == C.CH_KLINE:
            closed = self.candles.update(*kline_push(msg))
            return [closed] if closed is not None else []
        return super().events_of(msg)

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        for msg in subscriptions(self.symbols):
            await self.send_json(ws, msg)
        self.candles.reset_open()  # (pushes that arrive meanwhile wait in the socket)
        if self.klines is not None:
            self.publish_all(await self.candles.backfill(self.klines, self.server_ms()))

    def on_control(self, msg: dict[str, Any]) -> None:
        if msg.get("channel") == C.CH_ERROR:
            self.sub_errors.append(str(msg.get("data"))[:120])
            self.set_state("subscription_error", str(msg.get("data"))[:120])
