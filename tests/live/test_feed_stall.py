"""The watchdog is not blind when the stream stalls (issue 19, item 1). Before: pushes stopped while
pongs kept coming, nothing fetched a price over REST, and a short was liquidated during a 40 s ramp.

Here the public stream simply stops (the rig publishes no more ticks - what a stall with pongs looks
like to the engine) while the fake's price ramps from 60 000 to 80 000 in 40 s, through the 3x
short's liquidation price (~79 760). The watchdog reads the fair price over REST after
`stale_after_s` and closes the position in the red band, before the exchange liquidates it.
"""

from __future__ import annotations

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
