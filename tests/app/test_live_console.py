"""The live console (mode = "live") end to end against the fake MEXC on 127.0.0.1: the same stack as
paper, the MEXC venue underneath - ticks in, an entry sized and sent signed with its externalOid
persisted first, the emergency close sent reduce-only."""

from __future__ import annotations

import asyncio
import json

from tests.venues.mexc.conftest import fake  # noqa: F401 - fixture
from tests.venues.mexc.fake_exchange import API_KEY, SECRET
from tui_trader.app.settings import load_settings
from tui_trader.app.wiring import build_core
from tui_trader.domain.config import Settings
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.models import ClientOrderId, Side


def deal(price: float, ts: int) -> dict:
    return {"channel": "push.deal", "symbol": "BTC_USDT", "ts": ts, "data": [{"p": price, "v": 3, "T": 1, "O": 3, "M": 2, "t": ts}]}


async def _until(predicate, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def test_live_stack_trades_on_the_fake_exchange(isolated_environment, fake):  # noqa: F811
    base, _ = load_settings(None)
    settings = Settings.model_validate({
        **json.loads(base.model_dump_json(exclude={"mexc", "strategy"})), "mode": "live",
        "mexc": {"rest_base": fake.url, "ws_url": fake.ws_url, "api_key": API_KEY, "api_secret": SECRET,
                 "ws_ping_interval_s": 0.05, "request_timeout_s": 2},
        "strategy": {"symbols": ["BTC_USDT"], "enabled": False},
    })
    core = build_core(settings)
    stack = core.components["stack"]
    async with core:
        await _until(lambda: core.components["feed"].state == "connected")
        await fake.wait_subscribed("push.deal", "BTC_USDT")  # MEXC pushes only what was subscribed
        await fake.push(deal(60_000.5, fake.now_ms()))
        await _until(lambda: stack.cache.last_price("BTC_USDT") == 60_000.5)
        now = stack.execution.clock.now_ms()
        cid = ClientOrderId("man-BTC-1-O")
        stack.execution.submit(OpenPosition(now, "manual", "BTC_USDT", Side.SHORT, cid, 10.0, 3))
        await _until(lambda: fake.calls["create"] == 1)
        sent = json.loads(fake.orders[0]["raw"])
        assert sent["externalOid"] == "man-BTC-1-O" and sent["side"] == 3 and sent["leverage"] == 3
        # 10 % of the fake's 890.5 USDT available x 3 / (60 000.5 x 0.0001 BTC per contract) = 44 contracts
        assert sent["vol"] == 44
        stored = await core.components["db"].fetchone("SELECT state FROM orders WHERE client_id = 'man-BTC-1-O'")
        assert stored is not None  # persisted before it was sent, then updated
        fake.positions.append({"positionId": 9001, "symbol": "BTC_USDT", "positionType": 2, "openType": 1, "state": 1,
                               "holdVol": 44, "holdAvgPrice": 60000.5, "liquidatePrice": 79500.1, "im": 88.0,
                               "leverage": 3, "realised": -0.0073})
        await stack.venue.resync()
        await _until(lambda: stack.cache.position("BTC_USDT", Side.SHORT) is not None)
        stack.emergency.request_close_all("TEST")
        await _until(lambda: fake.calls["create"] >= 2)
        close = json.loads(fake.orders[1]["raw"])
        assert close["side"] == 2 and close["vol"] == 44  # close short, the whole position
        # the exchange filled the close: the next resync reports the position gone, the close ends
        fake.positions.clear()
        await stack.venue.resync()
        await _until(lambda: stack.cache.position("BTC_USDT", Side.SHORT) is None)
        await _until(lambda: not stack.execution.is_closing("BTC_USDT", Side.SHORT), timeout=10)
        assert fake.calls["create"] == 2  # no duplicate close
