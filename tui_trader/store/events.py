"""Store layer: records bus events in the `events` table through the batching writer.

Subscribes with the EVERY policy on a bounded queue: the tick path never waits for the disk. Market
data - trades, fair prices, books, candles, funding rates (the ticker's fields) - is skipped unless
`record_market_data` is on: it is the bulk, it is replayable, and a day of it would bury the fills.
"""

from __future__ import annotations

import json

from tui_trader.domain.events import (
    BookTick,
    CandleClosed,
    CandlesClosed,
    Event,
    FundingRateUpdated,
    MarkPriceTick,
    TradeTick,
    event_to_dict,
)
from tui_trader.engine.bus import EventBus, Policy
from tui_trader.store.db import Database

_MARKET = (TradeTick, MarkPriceTick, BookTick, CandleClosed, CandlesClosed, FundingRateUpdated)
_INSERT = "INSERT INTO events (ts_ms, type, payload) VALUES (?, ?, ?)"


class EventRecorder:
    name = "event-recorder"

    def __init__(self, bus: EventBus, db: Database, *, record_market_data: bool = False, maxsize: int = 50_000) -> None:
        self.db = db
        self.record_market_data = record_market_data
        self.recorded = 0
        self._sub = bus.subscribe_queue("store", Policy.EVERY, maxsize=maxsize)

    def _record(self, event: Event) -> None:
        if not self.record_market_data and isinstance(event, _MARKET):
            return
        self.db.enqueue(_INSERT, (event.ts_ms, event.type, json.dumps(event_to_dict(event), default=str)))
        self.recorded += 1

    async def run(self) -> None:
        async for batch in self._sub:
            for event in batch:
                self._record(event)

    async def shutdown(self) -> None:
        for event in self._sub.drain():
            self._record(event)
