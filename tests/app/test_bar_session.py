"""A bar-mode strategy in a paper session (the session runtime's own wiring): entries fill at bar
closes, and a session stopped part-way and resumed (indicator windows from its checkpoint) makes the
very fills of an uninterrupted one."""

from __future__ import annotations

import asyncio

import pytest

from tui_trader.app.sessions import SessionService
from tui_trader.app.settings import load_settings
from tui_trader.engine.strategy_runner import bundled_strategy_path
from tui_trader.store.db import Database
from tui_trader.venues.replay import bundled_data_path

BCC = bundled_data_path("bittrex_BCC-BTC_1m_20171104-20171118.csv.gz")


def _strategy(tmp_path):
    """The bench strategy at leverage 3: entries pass the default watchdog and entry rules."""
    text = bundled_strategy_path("bar_pump_short.toml").read_text()
    path = tmp_path / "bar3.toml"
    path.write_text(text.replace("leverage = 10", "leverage = 3").replace("max_leverage = 10", "max_leverage = 3"))
    return str(path)


def _key(f):
    return f.client_id, f.ts_ms, f.price, f.qty_contracts, f.fee, f.realized_pnl


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The fills of one uninterrupted session over the whole file (in its own database), run once for the
    module: both tests compare a stopped-and-resumed session with it. Module fixtures run before the autouse
    `isolated_environment`, so this one hides the developer's config and keys itself."""
    tmp = tmp_path_factory.mktemp("bar-straight")

    async def run():
        settings, _ = load_settings(None)
        db = Database(tmp / "sessions.sqlite")
        writer = asyncio.create_task(db.run())
        service = SessionService(settings, db)
        try:
            info = await service.create({"name": "straight", "data_file": str(BCC), "strategy_file": _strategy(tmp)})
            assert await asyncio.wait_for(service.wait(info.id), 120) == "finished"
            return (await service.orders_and_fills(info.id))[1]
        finally:
            await service.shutdown()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await db.shutdown()

    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_CONFIG_HOME", str(tmp / "xdg-config"))
        env.setenv("XDG_DATA_HOME", str(tmp / "xdg-data"))
        env.delenv("TUI_TRADER_MEXC_API_KEY", raising=False)
        env.delenv("TUI_TRADER_MEXC_API_SECRET", raising=False)
        env.chdir(tmp)
        return asyncio.run(run())


async def test_a_bar_session_fills_at_closes_and_resumes_exactly(service, tmp_path, straight):
    request = {"data_file": str(BCC), "strategy_file": _strategy(tmp_path)}
    reference = straight
    entries = [f for f in reference if f.client_id.endswith("-O")]
    assert len(entries) >= 20
    assert all(f.ts_ms % 60_000 == 0 for f in entries)  # at a bar's close (the next bar's open time)

    info = await service.create({"name": "resumable", **request})
    runtime = service.runtimes[info.id]
    while runtime.feed.candles_published < 9_000:  # stop part-way, well into the trades
        await asyncio.sleep(0)
    await service.stop(info.id)
    await service.resume(info.id)
    assert await asyncio.wait_for(service.wait(info.id), 120) == "finished"
    after = (await service.orders_and_fills(info.id))[1]
    assert [_key(f) for f in after] == [_key(f) for f in reference]


async def test_a_bar_session_stopped_at_an_entry_resumes_with_the_fill_at_that_close(service, tmp_path, straight):
    """The stop is asked for the moment an entry goes out at a close: the session must not park between the
    candle's close and its close trade (the entry would fill at the next open after the resume)."""
    from tui_trader.domain.events import StrategyStateChanged

    request = {"data_file": str(BCC), "strategy_file": _strategy(tmp_path)}
    reference = straight
    info = await service.create({"name": "stopped-at-entry", **request})
    runtime = service.runtimes[info.id]
    asked: list[int] = []

    def on_state(ev):
        if ev.state == "ENTRY_PENDING" and not asked:
            asked.append(ev.ts_ms)
            runtime.request_stop()  # in the step that sends the entry, before its close trade

    runtime.bus.subscribe(on_state, [StrategyStateChanged], name="test.stop-at-entry")
    assert await asyncio.wait_for(service.wait(info.id), 120) == "stopped" and asked
    await service.resume(info.id)
    assert await asyncio.wait_for(service.wait(info.id), 120) == "finished"
    after = (await service.orders_and_fills(info.id))[1]
    assert [_key(f) for f in after] == [_key(f) for f in reference]
