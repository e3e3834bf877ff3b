"""A quieter store (issue 20, item 5): a position read again over REST (the 10 s audit, every resync)
that says nothing new is neither a snapshot row nor an event; market data (candles, funding rates,
ticks) reaches the events table only with `record_market_data` on."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import settle
from tests.live.filling_fake import SHORT
from tests.live.rig import SYM, LiveRig
from tui_trader.domain.events import (
    CandleClosed,
    FundingRateUpdated,
    MarkPriceTick,
    PositionChanged,
    TradingStateChanged,
)
from tui_trader.engine.bus import EventBus
from tui_trader.store.db import Database
from tui_trader.store.events import EventRecorder


async def test_a_position_polled_unchanged_is_stored_and_published_once(fake, tmp_path):
    fake.open_position(SYM, SHORT, 40, 60000.0, leverage=3)  # opened on the exchange's site
    rig = await LiveRig(fake, tmp_path / "live.sqlite", strategy=None).start()
    try:
        await rig.quiesce()
        rows = await rig.rows("SELECT contracts FROM position_snapshots WHERE symbol = ?", SYM)
        events = [e for e in rig.of(PositionChanged) if e.position.symbol == SYM]
        assert len(rows) == 1 and len(events) == 1  # adopted at start
        for _ in range(6):  # a minute of audits: the same position each time
            fake.set_price(SYM, 60000.0 + 10 * _)  # (its mark moves: not a change of the holding)
            await rig.parts.venue.resync()
            await rig.quiesce()
        assert len(await rig.rows("SELECT 1 FROM position_snapshots WHERE symbol = ?", SYM)) == 1
        assert len([e for e in rig.of(PositionChanged) if e.position.symbol == SYM]) == 1
        fake.open_position(SYM, SHORT, 10)  # someone adds 10 contracts on the site: a change
        await rig.parts.venue.resync()
        await rig.quiesce()
        rows = await rig.rows("SELECT contracts FROM position_snapshots WHERE symbol = ? ORDER BY id", SYM)
        assert [r["contracts"] for r in rows] == ["40", "50"]
        assert [e.position.contracts for e in rig.of(PositionChanged) if e.position.symbol == SYM][-1] == 50
    finally:
        await rig.stop()


@pytest.mark.parametrize("record", [False, True])
async def test_market_data_reaches_the_events_table_only_when_recorded(tmp_path, record):
    bus, db = EventBus(), Database(tmp_path / "e.sqlite")
    recorder = EventRecorder(bus, db, record_market_data=record)
    task = asyncio.create_task(recorder.run())
    try:
        bus.publish(CandleClosed(60_000, SYM, 0, 60, 1.0, 1.0, 1.0, 1.0, 5.0))
        bus.publish(FundingRateUpdated(60_001, SYM, 0.0001))
        bus.publish(MarkPriceTick(60_002, SYM, 1.0))
        bus.publish(TradingStateChanged(60_003, "HALTED", "test"))
        await settle()
        await recorder.shutdown()
        await db.flush()
        types = [r["type"] for r in await db.fetchall("SELECT type FROM events ORDER BY ts_ms")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.close()
    market = ["candle", "funding_rate", "mark_price"]
    assert types == (market if record else []) + ["trading_state"]
