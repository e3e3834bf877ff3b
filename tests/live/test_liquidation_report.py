"""A gap through the liquidation price on the fake MEXC: the exchange liquidates; the console reports
it (CRITICAL `liquidated`, with the loss) and sends no close of its own (issue 19, item 6).

Before: the console published only "venue reports flat" and sent two closes that failed with 2009.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.live.filling_fake import SHORT
from tests.live.rig import SYM, LiveRig
from tui_trader.domain.events import ErrorRaised, PositionLiquidated
from tui_trader.domain.models import Side


async def test_a_gap_through_liquidation_is_reported_with_the_loss_and_no_close_is_sent(fake, tmp_path):
    held = fake.open_position(SYM, SHORT, 40, 60000.0, leverage=3)
    rig = await LiveRig(fake, tmp_path / "live.sqlite", pushes=True, strategy=None).start()
    try:
        await fake.wait_ws(lambda f: len(f.ws_logged_in) == 1)
        await rig.hold(60000.0, 3)
        assert rig.stack.cache.position(SYM, Side.SHORT) is not None
        gap = float(held["liquidatePrice"]) * 1.02  # one print, 2 % past the exchange's liquidation price
        rig.trade(gap)
        assert len(fake.liquidations) == 1  # the exchange took it over at its price
        await fake.settle()
        await rig.hold(gap, 4)
        [liq] = rig.of(PositionLiquidated)
        assert liq.symbol == SYM and liq.side == "SHORT" and liq.margin_lost == pytest.approx(Decimal(str(held["im"])))
        assert any(e.level == "CRITICAL" and "liquidated by the exchange" in e.message for e in rig.of(ErrorRaised))
        assert rig.stack.cache.position(SYM, Side.SHORT) is None
        assert fake.calls["create"] == 0  # no close raced the exchange's take-over (it would fail 2009)
    finally:
        await rig.stop()
