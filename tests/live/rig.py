"""Test support: the live trading stack (MEXC venue, execution, risk, watchdog, strategy) on the fake.

The stack is the one `app/wiring.py` builds for `--live`: `build_mexc` + `build_trading_stack`, a
real SQLite store, the private stream optional. Time is a `SimClock` moved together with the fake's
clock (Request-Time stays valid); the test plays the public feed by publishing ticks and moving the
fake's price. `step()` waits (with a deadline) until execution has handled everything queued, then
moves time - no sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from tests.conftest import settle
from tests.venues.mexc.fake_exchange import API_KEY, SECRET, FakeMexc
from tui_trader.domain.config import BreakerConfig, MexcConfig, RetryConfig, Settings
from tui_trader.domain.events import BookTick, Event, MarkPriceTick, TradeTick
from tui_trader.domain.strategy.schema import Strategy, strategy_from_dict
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock, SimClock
from tui_trader.engine.trading import TradingStack, build_trading_stack
from tui_trader.store.db import Database
from tui_trader.store.orders import OrderRepository
from tui_trader.store.state import StateRepository
from tui_trader.venues.mexc.factory import MexcParts, build_mexc, history_warmup

SYM = "BTC_USDT"
TAG = f"fast:{SYM}"

FAST = {  # a short-window SHORT strategy: a 5 % jump within seconds signals, a 3 % gain exits
    "strategy_name": "fast",
    "direction": "SHORT",
    "indicators": {"jump": {"type": "pump_magnitude_pct", "current": [2, 0], "baseline": [10, 5]}},
    "s1_signal": {"conditions": [{"indicator": "jump", "operator": ">=", "value": 5}]},
    "o1_cancel": {"timeout_s": 60, "cooldown_s": 120, "conditions": [{"indicator": "jump", "operator": "<=", "value": -50}]},
    "z1_entry": {
        "conditions": [{"indicator": "spread_pct", "operator": "<=", "value": 0.5}],
        "order": {"size_pct": 10, "leverage": 3, "fill_timeout_s": 10, "stop_loss_pct": 5, "take_profit_pct": 25},
    },
    "ze1_close": {"conditions": [{"indicator": "unrealized_pnl_pct", "operator": ">=", "value": 3}]},
    "emergency_exit": {"conditions": [{"indicator": "unrealized_pnl_pct", "operator": "<=", "value": -40}]},
    "global_limits": {"warmup_s": 0},
}


class LiveRig:
    def __init__(self, fake: FakeMexc, db_path: Path, *, pushes: bool = False,
                 strategy: dict[str, Any] | Strategy | None = FAST, order_poll_s: float | None = None,
                 clock: Clock | None = None, symbols: list[str] | None = None, feed: bool = False,
                 history: bool = False) -> None:
        self.fake, self.db_path, self.pushes, self.strategy = fake, db_path, pushes, strategy
        self.feed = feed  # True: the real public socket (MexcFeed on the fake's WebSocket) prices the market
        self.history = history  # True: the strategy's candle history is loaded from the fake at start, as wiring does
        self.order_poll_s = order_poll_s
        self.symbols = symbols or [SYM]
        self.clock: Clock = clock or SimClock(fake.now_ms())
        self.bus = EventBus()
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append, name="test.events")
        self.tasks: list[asyncio.Task[Any]] = []
        self.db: Database
        self.parts: MexcParts
        self.stack: TradingStack

    async def start(self) -> LiveRig:
        fake = self.fake
        mexc = MexcConfig(rest_base=fake.url, ws_url=fake.ws_url, api_key=SecretStr(API_KEY), api_secret=SecretStr(SECRET),
                          request_timeout_s=2.0, connect_timeout_s=1.0, ws_ping_interval_s=0.5, ws_stall_timeout_s=5.0,
                          ws_reconnect_initial_s=0.01, ws_reconnect_max_s=0.05, poll_interval_s=2.0)
        settings = Settings(mode="live", mexc=mexc, retry=RetryConfig(jitter_s=0.0), breaker=BreakerConfig(call_timeout_s=3.0))
        self.db = Database(self.db_path)
        self.parts = build_mexc(mexc, settings.retry, settings.breaker, self.bus, self.clock, self.symbols)
        if self.order_poll_s is not None:
            self.parts.venue.order_poll_s = self.order_poll_s
        await self.parts.venue.start()
        self.stack = build_trading_stack(
            settings, self.bus, self.clock, self.parts.venue, OrderRepository(self.db), StateRepository(self.db),
            strategy=strategy_from_dict(self.strategy) if isinstance(self.strategy, dict) else self.strategy,
            symbols=self.symbols, session_id="",
        )
        self.parts.user_stream.report = self.stack.execution.report
        services: list[Any] = [self.db]
        for service, _ in self.stack.services:
            if self.history and service is self.stack.runner:  # as wiring does: just before the strategy
                services.append(history_warmup(self.parts, self.stack.runner, self.bus, self.clock))
            services.append(service)
        if self.pushes:
            services.append(self.parts.user_stream)
        if self.feed:
            services.append(self.parts.feed)
        for service in services:
            starter = getattr(service, "start", None)
            if starter is not None:
                await starter()
            self.tasks.append(asyncio.create_task(service.run(), name=f"rig:{getattr(service, 'name', service)}"))
        await settle()
        return self

    async def stop(self) -> None:
        """Every task cancelled mid-flight (what kill -9 leaves behind, but the store closes cleanly)."""
        if self.stack.watchdog is not None:  # on a wall clock its timer would start closes while we stop
            self.stack.watchdog.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.stack.execution.cancel_all_tasks()
        await self.parts.user_stream.shutdown()
        if self.feed:
            await self.parts.feed.shutdown()
        await self.parts.venue.close()
        await self.db.close()

    # --- time and market ---------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        assert isinstance(self.clock, SimClock), "a wall-clock rig moves by itself"
        self.clock.advance(seconds)
        self.fake.server_offset_ms += round(seconds * 1000)

    async def quiesce(self, timeout: float = 10.0) -> None:
        """Wait until execution has handled every queued report, entry and send (deadline: fails)."""
        await settle()
        await asyncio.wait_for(self.stack.execution.idle(), timeout)
        await settle()

    async def step(self, seconds: float = 1.0) -> None:
        await self.quiesce()
        self.advance(seconds)
        await self.quiesce()

    def trade(self, price: float, symbol: str = SYM) -> None:
        """One public trade and top of book at `price`; the fake's market moves there too."""
        self.fake.set_price(symbol, price)
        now = self.clock.now_ms()
        self.bus.publish(TradeTick(now, symbol, price, 1.0))
        self.bus.publish(MarkPriceTick(now, symbol, price))
        self.bus.publish(BookTick(now, symbol, price * 0.9999, price * 1.0001))

    async def run_until(self, predicate: Callable[[], bool], *, price: float, max_s: int = 60) -> None:
        """`until` for paths where the venue client itself waits on the clock (its lookup delay, the recv
        window before a re-send): time moves without waiting for execution to be idle first."""
        for _ in range(max_s):
            if predicate():
                return
            self.trade(price)
            await self.idle_or_waiting()
            self.advance(1.0)
            await self.idle_or_waiting()
        assert predicate(), f"condition not reached within {max_s} simulated seconds"

    async def idle_or_waiting(self, real_s: float = 0.5) -> None:
        """Wait until execution is idle, or at most `real_s` (then something waits on simulated time)."""
        await settle()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stack.execution.idle(), real_s)

    async def hold(self, price: float, seconds: int) -> None:
        for _ in range(seconds):
            self.trade(price)
            await self.step(1.0)

    async def until(self, predicate: Callable[[], bool], *, price: float, max_s: int = 60) -> None:
        """Trade at `price` a second at a time until `predicate()` holds (fails after `max_s` simulated s)."""
        for _ in range(max_s):
            if predicate():
                return
            self.trade(price)
            await self.step(1.0)
        assert predicate(), f"condition not reached within {max_s} simulated seconds"

    # --- views -------------------------------------------------------------------------------

    @property
    def machine(self):
        assert self.stack.runner is not None
        return self.stack.runner.machines[SYM]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def rows(self, sql: str, *params: Any) -> list[Any]:
        return list(await self.db.fetchall(sql, params))
