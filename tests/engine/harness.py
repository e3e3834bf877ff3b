"""Test harness: the engine's execution stack on the paper venue with a simulated clock."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from tui_trader.domain.config import FeesConfig, PaperConfig
from tui_trader.domain.events import BookTick, MarkPriceTick, TradeTick
from tui_trader.domain.models import Instrument
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import SimClock
from tui_trader.engine.execution import Execution
from tui_trader.store.memory import MemoryStore
from tui_trader.venues.paper.venue import PaperVenue

SYM = "XYZ_USDT"
INSTR = Instrument(SYM, contract_size=D("1"), price_unit=D("0.0001"), vol_unit=D(1), min_vol=D(1), max_vol=D(10**9),
                   maintenance_margin_rate=D("0.01"))


class Stack:
    """bus + SimClock + paper venue + execution (+ whatever a test adds), started with `async with`."""

    def __init__(self, balance="10000", slippage=0.0, risk=None, instruments=None):
        self.bus = EventBus()
        self.clock = SimClock(1_700_000_000_000)
        self.events = []
        self.bus.subscribe(self.events.append)
        self.store = MemoryStore()
        self.cache = Cache(self.bus)
        self.execution = Execution(self.bus, self.clock, None, self.store, self.cache, risk=risk)  # venue set below
        self.venue = PaperVenue(self.bus, paper=PaperConfig(slippage_bps=slippage, latency_ms=0), fees=FeesConfig(),
                                starting_balance=D(balance), instruments=instruments or {SYM: INSTR},
                                report=self.execution.report)
        self.execution.venue = self.venue
        self._task = None

    async def __aenter__(self):
        self._task = asyncio.create_task(self.execution.run())
        return self

    async def __aexit__(self, *exc):
        self._task.cancel()
        await self.execution.cancel_all_tasks()
        await asyncio.gather(self._task, return_exceptions=True)

    async def tick(self, price, symbol=SYM, mark=None, dt_ms=1000):
        ts = self.clock.now_ms() + dt_ms
        self.clock.advance_to(ts)
        self.bus.publish(BookTick(ts, symbol, price, price))
        self.bus.publish(TradeTick(ts, symbol, price, 1.0))
        self.bus.publish(MarkPriceTick(ts, symbol, mark if mark is not None else price))
        await self.execution.idle()

    def of(self, cls):
        return [e for e in self.events if isinstance(e, cls)]
