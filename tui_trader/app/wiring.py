"""App layer: the composition root. Builds every object from `Settings` and hands it down.

One place to read to see what talks to what:

    feed (replay or MEXC) -> bus -> strategy runner -> execution -> venue (paper or MEXC)
                                 -> watchdog ----------^            |
    venue reports -> execution (persist, then publish) -> bus -> store recorder, headless, UI

Paper mode replays recorded candles: the trading components run on a `SimClock` that the replay
moves to each tick's data time (so a 60x replay runs every timer 60x), while the core and the
pacing use the wall clock. Live mode runs everything on the wall clock.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from tui_trader.app.session_runtime import NamespacedState
from tui_trader.app.sessions import SessionService
from tui_trader.domain.config import Settings
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock, SimClock, WallClock
from tui_trader.engine.core import TraderCore
from tui_trader.engine.strategy_runner import load_strategy
from tui_trader.engine.trading import TradingStack, build_trading_stack, replay_settings
from tui_trader.store.db import Database
from tui_trader.store.events import EventRecorder
from tui_trader.store.orders import OrderRepository
from tui_trader.store.state import StateRepository
from tui_trader.venues.paper.venue import PaperVenue
from tui_trader.venues.replay import (
    BUNDLED_PACED_FROM_MS,
    ReplayFeed,
    bundled_data_path,
    check_bar_data,
)

DB_NAME = "tui-trader.sqlite"
CONSOLE_SESSION = "console"
CONSOLE_PAPER_PREFIX = "console-paper:"


def database_path(settings: Settings) -> Path:
    if settings.store.path is not None:
        return settings.store.path
    assert settings.data_dir is not None, "load_settings() fills data_dir"
    return settings.data_dir / DB_NAME


def replay_path(settings: Settings) -> Path:
    return settings.replay.file if settings.replay.file is not None else bundled_data_path()


def paced_from_ms(settings: Settings) -> int:
    """`replay.paced_from` as epoch ms (a time without a zone is UTC); the bundled sample's own default."""
    when = settings.replay.paced_from
    if when is None:
        return BUNDLED_PACED_FROM_MS if settings.replay.file is None else 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def build_core(settings: Settings, *, clock: Clock | None = None, bus: EventBus | None = None) -> TraderCore:
    """The core with every service registered, not yet started (`async with core:` starts it)."""
    bus = bus or EventBus()
    wall = clock or WallClock()
    core = TraderCore(bus, wall, mode="live monitor-only" if settings.mode == "live" and settings.monitor_only
                      else settings.mode)
    db = Database(database_path(settings), batch_size=settings.store.batch_size, flush_interval_ms=settings.store.flush_interval_ms)
    recorder = EventRecorder(bus, db, record_market_data=settings.store.record_market_data)
    core.add(db, critical=True, last=True)  # flushed and closed once every other task has ended
    core.add(recorder, restart=True)
    core.components.update(settings=settings, db=db, recorder=recorder)
    if settings.mode == "live":
        stack = _live(settings, core, bus, wall, db)
    else:
        stack = _paper(settings, core, bus, wall, db)
    core.components.update(stack=stack, execution=stack.execution, venue=stack.venue, cache=stack.cache)
    sessions = SessionService(settings, db, wall=wall)  # paper sessions the dashboard starts run in this process
    core.components["sessions"] = sessions
    core.on_stop(sessions.shutdown)
    return core


def _strategy(settings: Settings):
    return load_strategy(settings.strategy.file) if settings.strategy.enabled else None


def _paper(settings: Settings, core: TraderCore, bus: EventBus, wall: Clock, db: Database) -> TradingStack:
    strategy = _strategy(settings)
    feed = ReplayFeed(
        bus, wall, replay_path(settings), symbol=settings.replay.symbol, speed=settings.replay.speed,
        ticks_per_candle=settings.replay.ticks_per_candle, spread_bps=settings.replay.spread_bps, loop=settings.replay.loop,
        paced_from_ms=paced_from_ms(settings), close_after_bar=strategy is not None and strategy.bar_mode,
    )
    check_bar_data(feed, strategy)
    data_clock = SimClock(feed.first_ts_ms() - 1)
    feed.data_clock = data_clock
    venue = PaperVenue(bus, paper=settings.paper, fees=settings.fees)
    state = StateRepository(db)
    machines = NamespacedState(state, CONSOLE_PAPER_PREFIX)
    stack = build_trading_stack(
        replay_settings(settings, feed.interval_s, settings.replay.ticks_per_candle), bus, data_clock, venue, OrderRepository(db), state, strategy=strategy,
        symbols=settings.strategy.symbols or [feed.symbol], session_id=f"{CONSOLE_SESSION}-paper-{wall.now_ms()}",
        strategy_state_store=machines,
    )
    core.add(_FreshPaperAccount(db))  # before the strategy restores its machines
    feed.backpressure = stack.execution
    for service, options in stack.services:
        core.add(service, **options)
    core.add(feed, critical=True)  # last: every listener is subscribed before the first tick; a bad row stops the core
    core.components.update(feed=feed, data_clock=data_clock)
    return stack


def _live(settings: Settings, core: TraderCore, bus: EventBus, wall: Clock, db: Database) -> TradingStack:
    from tui_trader.venues.mexc.candles import check_live_bar_interval
    from tui_trader.venues.mexc.factory import build_mexc, history_warmup

    symbols = list(settings.strategy.symbols)
    strategy = None if settings.monitor_only else _strategy(settings)
    check_live_bar_interval(strategy)
    parts = build_mexc(settings.mexc, settings.retry, settings.breaker, bus, wall, symbols)
    stack = build_trading_stack(  # monitor-only: no strategy, so no entry; watchdog, kill switch and closes as ever
        settings, bus, wall, parts.venue, OrderRepository(db), StateRepository(db),
        strategy=strategy, symbols=symbols, session_id=CONSOLE_SESSION,
    )
    parts.user_stream.report = stack.execution.report  # private pushes: persisted, cached, then published
    core.add(_VenueLifecycle(parts.venue, bus, settings), critical=True)
    for service, options in stack.services:
        if service is stack.runner:  # its candles: history now (after reconciliation), the kline stream after
            core.add(history_warmup(parts, stack.runner, bus, wall))
        core.add(service, **options)
    core.add(parts.user_stream, restart=True)
    core.add(parts.feed, restart=True)
    core.components.update(feed=parts.feed, user_stream=parts.user_stream)
    return stack


class _FreshPaperAccount:
    """The console's paper account starts fresh at every launch (the replay starts over, its orders
    are stored under a new session id), so the strategy machines of the previous launch are
    cleared; the kill switch is not: a HALTED state survives restarts until a person resets it.
    Resumable paper accounts are sessions."""

    name = "paper-account"

    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(self) -> None:
        await self.db.execute_durable("DELETE FROM state WHERE key LIKE ?", (CONSOLE_PAPER_PREFIX + "%",))

    async def run(self) -> None:
        return None


class _VenueLifecycle:
    """Starts the MEXC venue (clock offset, contract details) before trading; closes its session last."""

    name = "mexc-venue"

    def __init__(self, venue, bus: EventBus, settings: Settings) -> None:
        self.venue, self.bus, self.settings = venue, bus, settings

    async def start(self) -> None:
        from tui_trader.domain.events import StartupChecked
        from tui_trader.venues.mexc.startup import run_startup_checks

        mexc = self.settings.mexc
        await run_startup_checks(self.venue, self.bus, recv_window_s=mexc.recv_window_s, rest_base=mexc.rest_base)
        if self.settings.monitor_only:
            self.bus.publish(StartupChecked(self.venue.clock.now_ms(), "mode", "monitor-only",
                                            "chosen: every position of the account watched, no entries; closes you"
                                            " ask for and the watchdog's auto-close still go"))

    async def run(self) -> None:
        import asyncio

        await asyncio.Event().wait()

    async def shutdown(self) -> None:
        await self.venue.close()
