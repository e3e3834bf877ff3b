"""A real-data backtest shared by the metric and parity tests (run once per session, saved to SQLite)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tui_trader.app.wiring import build_core
from tui_trader.backtest.recorder import BacktestTrade, Recorder
from tui_trader.backtest.runner import run_backtest
from tui_trader.domain.config import PaperConfig, ReplayConfig, Settings, StoreConfig
from tui_trader.domain.events import FeedStateChanged
from tui_trader.engine.bus import EventBus
from tui_trader.store.backtests import BacktestRepository
from tui_trader.store.db import Database
from tui_trader.venues.candle_files import read_candles
from tui_trader.venues.replay import bundled_data_path

# 2017-12-02 00:00 -> 2017-12-07 00:00 UTC of the bundled real NXT/BTC bars: four pump shorts
FROM_MS, TO_MS = 1_512_172_800_000, 1_512_604_800_000


@pytest.fixture(scope="session")
def real_slice(tmp_path_factory) -> Path:
    """The real bars of that window, written as a plain CSV (no bar changed)."""
    path = tmp_path_factory.mktemp("data") / "bittrex_NXT-BTC_1m_slice.csv"
    rows = ["timestamp_ms,open,high,low,close,volume"]
    rows += [f"{c.ts_ms},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r}"
             for c in read_candles(bundled_data_path()) if FROM_MS <= c.ts_ms < TO_MS]
    path.write_text("\n".join(rows) + "\n")
    return path


def paper_settings(tmp: Path, data: Path) -> Settings:
    return Settings(data_dir=tmp, replay=ReplayConfig(file=data, speed=0), paper=PaperConfig(latency_ms=0),
                    store=StoreConfig(path=tmp / "paper.sqlite"))


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, real_slice):
    """(stored record, result) of the default strategy over the slice, every 15 minutes sampled."""
    tmp = tmp_path_factory.mktemp("bt")
    db_path = tmp / "runs.sqlite"
    result = run_backtest(None, [real_slice], settings=paper_settings(tmp, real_slice), equity_every_ms=900_000, store_path=db_path)

    async def load():
        db = Database(db_path)
        try:
            return await BacktestRepository(db).get_run(result.id)
        finally:
            await db.close()

    return asyncio.run(load()), result


async def paper_replay_trades(settings: Settings, timeout_s: float = 120) -> list[BacktestTrade]:
    """The trades of the console's paper mode replaying `settings.replay.file` to its end."""
    from decimal import Decimal

    bus = EventBus()
    trades = Recorder(bus, lambda: Decimal(0), 3_600_000)
    finished = asyncio.Event()
    bus.subscribe(lambda e: e.state == "finished" and finished.set(), [FeedStateChanged])
    core = build_core(settings, bus=bus)
    async with core:
        await asyncio.wait_for(finished.wait(), timeout_s)
        await core.components["execution"].idle()
    return trades.trades
