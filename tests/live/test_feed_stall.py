"""The watchdog is not blind when the stream stalls (issue 19, item 1). Before: pushes stopped while
pongs kept coming, nothing fetched a price over REST, and a short was liquidated during a 40 s ramp.

Here the public stream simply stops (the rig publishes no more ticks - what a stall with pongs looks
like to the engine) while the fake's price ramps from 60 000 to 80 000 in 40 s, through the 3x
short's liquidation price (~79 760). The watchdog reads the fair price over REST after
`stale_after_s` and closes the position in the red band, before the exchange liquidates it.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.live.filling_fake import SHORT
from tests.live.rig import SYM, LiveRig
from tui_trader.domain.events import FeedStateChanged, LiquidationWarning
from tui_trader.domain.models import Side


async def test_stream_stalls_during_a_ramp_to_liquidation_the_watchdog_closes_from_rest_prices(fake, tmp_path):
    held = fake.open_position(SYM, SHORT, 40, 60000.0, leverage=3)
    rig = await LiveRig(fake, tmp_path / "live.sqlite", strategy=None).start()
    try:
        await rig.hold(60000.0, 3)  # the stream prices it; then it goes silent
        for second in range(1, 41):
            fake.set_price(SYM, 60000.0 + 500.0 * second)  # the exchange's fair price ramps; no tick reaches us
            rig.advance(1.0)
            await rig.idle_or_waiting()
            if fake.position(SYM, SHORT) is None:
                break
        assert fake.liquidations == [], f"liquidated at {held['liquidatePrice']}"
        for _ in range(5):  # the close's report comes by the order lookup (every 2 s)
            rig.advance(1.0)
            await rig.idle_or_waiting()
        assert fake.position(SYM, SHORT) is None and rig.stack.cache.position(SYM, Side.SHORT) is None
        closes = [o for o in fake.orders if o["side"] == 2 and o["externalOid"]]
        assert len(closes) == 1 and fake.calls["fair"] >= 3
        polling = [e for e in rig.of(FeedStateChanged) if e.feed == "rest-prices" and e.state == "polling"]
        assert polling and SYM in polling[0].detail
        [auto] = [e for e in rig.of(LiquidationWarning) if e.level == "AUTOCLOSE"]
        assert auto.price_source == "mark" and auto.distance_pct < 10
    finally:
        await rig.stop()


@pytest.mark.parametrize("stall", ["pongs_answered", "no_pongs"])
async def test_real_public_socket_stalls_during_a_ramp_the_watchdog_closes_from_rest_prices(fake, tmp_path, stall):
    """The acceptance run through the real public socket: MexcFeed prices the 3x short from the fake's
    WebSocket (trades, and the fair price on the ticker), then the socket goes silent - pongs still answered, or nothing
    at all - while the exchange's fair price ramps 60 000 -> 80 000 over 40 s (liquidation ~79 760)."""
    fake.open_position(SYM, SHORT, 40, 60000.0, leverage=3)
    rig = await LiveRig(fake, tmp_path / "live.sqlite", strategy=None, feed=True).start()
    try:
        await fake.wait_ws(lambda f: any(m.get("method") == "sub.ticker" for m in f.ws_received))
        stamp = rig.clock.now_ms()
        await fake.push({"channel": "push.ticker", "symbol": SYM, "ts": stamp,  # the fair price rides on the ticker
                         "data": {"symbol": SYM, "fairPrice": 60000.0, "bid1": 59999.9, "ask1": 60000.1}})
        await fake.push({"channel": "push.deal", "symbol": SYM, "ts": stamp,
                         "data": [{"p": 60000.0, "v": 1, "T": 1, "O": 1, "M": 2, "t": stamp}]})
        deadline = asyncio.get_running_loop().time() + 5
        while rig.stack.cache.mark.get(SYM) is None:  # the socket's price reached the console
            assert asyncio.get_running_loop().time() < deadline, "no price from the public socket"
            await asyncio.sleep(0.01)
        if stall == "pongs_answered":
            fake.ws_stall_pushes = True  # pings answered, no market data
        else:
            fake.ws_stalled = True  # no pongs, no data
        for second in range(1, 41):
            fake.set_price(SYM, 60000.0 + 500.0 * second)  # the exchange's price runs; the socket says nothing
            rig.advance(1.0)
            await rig.idle_or_waiting()
            if fake.position(SYM, SHORT) is None:
                break
        assert fake.liquidations == []
        for _ in range(5):
            rig.advance(1.0)
            await rig.idle_or_waiting()
        assert fake.position(SYM, SHORT) is None and rig.stack.cache.position(SYM, Side.SHORT) is None
        assert len([o for o in fake.orders if o["side"] == 2 and o["externalOid"]]) == 1
        assert any(e.feed == "rest-prices" and e.state == "polling" for e in rig.of(FeedStateChanged))
        [auto] = [e for e in rig.of(LiquidationWarning) if e.level == "AUTOCLOSE"]
        assert auto.distance_pct < 10
    finally:
        await rig.stop()
