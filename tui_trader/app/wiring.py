"""App layer: the composition root. Builds every object from `Settings` and hands it down.

One place to read to see what talks to what. Tests build the same graph with a `SimClock` or a
temporary database by passing overrides.
"""

from __future__ import annotations

from pathlib import Path

from tui_trader.domain.config import Settings
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock, WallClock
from tui_trader.engine.core import TraderCore
from tui_trader.store.db import Database
from tui_trader.store.events import EventRecorder
from tui_trader.venues.replay import ReplayFeed, bundled_data_path

DB_NAME = "tui-trader.sqlite"


def database_path(settings: Settings) -> Path:
    if settings.store.path is not None:
        return settings.store.path
    assert settings.data_dir is not None, "load_settings() fills data_dir"
    return settings.data_dir / DB_NAME


def replay_path(settings: Settings) -> Path:
    return settings.replay.file if settings.replay.file is not None else bundled_data_path()


def build_core(settings: Settings, *, clock: Clock | None = None, bus: EventBus | None = None) -> TraderCore:
    """The core with every service registered, not yet started (`async with core:` starts it)."""
    bus = bus or EventBus()
    clock = clock or WallClock()
    core = TraderCore(bus, clock, mode=settings.mode)

    db = Database(database_path(settings), batch_size=settings.store.batch_size, flush_interval_ms=settings.store.flush_interval_ms)
    recorder = EventRecorder(bus, db, record_market_data=settings.store.record_market_data)
    feed = ReplayFeed(
        bus,
        clock,
        replay_path(settings),
        symbol=settings.replay.symbol,
        speed=settings.replay.speed,
        ticks_per_candle=settings.replay.ticks_per_candle,
        spread_bps=settings.replay.spread_bps,
        loop=settings.replay.loop,
    )
    # Registration order = start order; shutdown runs in reverse, so the store flushes last.
    core.add(db, critical=True)
    core.add(recorder, restart=True)
    core.add(feed, critical=False)
    core.components.update(settings=settings, db=db, recorder=recorder, feed=feed)
    return core
