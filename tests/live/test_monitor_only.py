"""Monitor-only (issue 20): MEXC takes no API orders for most accounts (1002, `apiAllowed = false`), so
where the console cannot send the watchdog's close, that close becomes an alarm with the exact manual
action - a position opened on the exchange's own site is watched, warned and, near liquidation, the
trader is told what to do."""

from __future__ import annotations

import re

from tests.live.filling_fake import SHORT
from tests.live.rig import LiveRig
from tui_trader.domain.events import LiquidationWarning, ManualActionRequired
from tui_trader.domain.models import Side

ETH = "ETH_USDT"


async def test_a_would_be_auto_close_on_a_monitor_only_symbol_raises_the_alarm_with_the_manual_action(fake, tmp_path):
    fake.contracts[ETH]["apiAllowed"] = False
    fake.not_allowed.add(ETH)  # and MEXC answers 1002 to any order on it, closes included
    held = fake.open_position(ETH, SHORT, 9, 3000.0, leverage=3)  # opened on the exchange's own site
    rig = await LiveRig(fake, tmp_path / "live.sqlite", strategy=None, symbols=["BTC_USDT", ETH]).start()
    try:
        assert ETH in rig.parts.venue.monitor_only and "apiAllowed" in rig.parts.venue.monitor_only[ETH]
        assert rig.stack.cache.position(ETH, Side.SHORT) is not None  # adopted and watched
        liq = float(held["liquidatePrice"])
        for price in (3000.0, liq * 0.95, liq * 0.97):  # green, then into the auto-close zone
            rig.trade(price, symbol=ETH)
            await rig.step(1.0)
        levels = [e.level for e in rig.of(LiquidationWarning) if e.symbol == ETH]
        assert "AUTOCLOSE" in levels
        [alarm] = rig.of(ManualActionRequired)[:1]
        assert re.fullmatch(r"close ETH_USDT short 9 contracts on the exchange now: \d+\.\d % to liquidation",
                            alarm.action), alarm.action
        assert alarm.distance_pct < 10 and "apiAllowed" in alarm.reason  # red band: the runway trigger
        assert fake.position(ETH, SHORT) is not None and fake.liquidations == []  # nothing could close it here
    finally:
        await rig.stop()
