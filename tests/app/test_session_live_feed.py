"""A paper session on the live MEXC public feed (here: the fake exchange on 127.0.0.1)."""

from __future__ import annotations

import asyncio

from tests.venues.mexc.conftest import fake  # noqa: F401 - fixture
from tui_trader.app.sessions import InvalidSessionRequest


def deal(price: float, ts: int) -> dict:
    return {"channel": "push.deal", "symbol": "BTC_USDT", "ts": ts, "data": [{"p": price, "v": 3, "T": 1, "O": 3, "M": 2, "t": ts}]}


async def test_session_on_the_mexc_public_feed_trades_paper_on_live_prices(service, fake):  # noqa: F811
    mexc = service.settings.mexc.model_copy(update={"ws_url": fake.ws_url, "rest_base": fake.url, "ws_ping_interval_s": 0.05})
    service.settings = service.settings.model_copy(update={"mexc": mexc})
    info = await service.create({"name": "live", "source": "mexc", "symbols": ["BTC_USDT"]})
    runtime = service.runtimes[info.id]
    await asyncio.wait_for(_until(lambda: runtime.feed.state == "connected"), 5)
    await fake.wait_subscribed("push.deal", "BTC_USDT")  # MEXC pushes only what was subscribed
    await fake.push(deal(60_000.5, fake.now_ms()))
    await asyncio.wait_for(_until(lambda: runtime.stack.cache.last_price("BTC_USDT") == 60_000.5), 5)
    assert runtime.venue.last["BTC_USDT"] == 60_000.5  # the paper venue trades on the live price
    assert (await service.stop(info.id)).status == "stopped"


async def test_mexc_source_needs_symbols(service):
    try:
        await service.create({"name": "x", "source": "mexc"})
    except InvalidSessionRequest as exc:
        assert "needs symbols" in str(exc)
    else:
        raise AssertionError("accepted a live session without symbols")


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)
