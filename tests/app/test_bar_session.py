"""A bar-mode strategy in a paper session (the session runtime's own wiring): entries fill at bar
closes, and a session stopped part-way and resumed (indicator windows from its checkpoint) makes the
very fills of an uninterrupted one."""

from __future__ import annotations

import asyncio

from tui_trader.engine.strategy_runner import bundled_strategy_path
from tui_trader.venues.replay import bundled_data_path

BCC = bundled_data_path("bittrex_BCC-BTC_1m_20171104-20171118.csv.gz")


def _strategy(tmp_path):
    """The bench strategy at leverage 3: entries pass the default watchdog and entry rules."""
    text = bundled_strategy_path("bar_pump_short.toml").read_text()
    path = tmp_path / "bar3.toml"
    path.write_text(text.replace("leverage = 10", "leverage = 3").replace("max_leverage = 10", "max_leverage = 3"))
    return str(path)


async def test_a_bar_session_fills_at_closes_and_resumes_exactly(service, tmp_path):
    request = {"data_file": str(BCC), "strategy_file": _strategy(tmp_path)}
    straight = await service.create({"name": "straight", **request})
    assert await asyncio.wait_for(service.wait(straight.id), 120) == "finished"
    reference = (await service.orders_and_fills(straight.id))[1]
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
    key = lambda f: (f.client_id, f.ts_ms, f.price, f.qty_contracts, f.fee, f.realized_pnl)
    assert [key(f) for f in after] == [key(f) for f in reference]


async def test_a_bar_session_stopped_at_an_entry_resumes_with_the_fill_at_that_close(service, tmp_path):
    """The stop is asked for the moment an entry goes out at a close: the session must not park between the
    candle's close and its close trade (the entry would fill at the next open after the resume)."""
    from tui_trader.domain.events import StrategyStateChanged

    request = {"data_file": str(BCC), "strategy_file": _strategy(tmp_path)}
    straight = await service.create({"name": "straight", **request})
    assert await asyncio.wait_for(service.wait(straight.id), 120) == "finished"
    reference = (await service.orders_and_fills(straight.id))[1]

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
    key = lambda f: (f.client_id, f.ts_ms, f.price, f.qty_contracts, f.fee, f.realized_pnl)
    assert [key(f) for f in after] == [key(f) for f in reference]
