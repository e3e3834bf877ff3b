"""Pre-trade rule on the fake MEXC (issue 19, item 5): an entry that would start near liquidation is
refused with the reason and never sent. Before: `min_entry_liq_distance_pct` was parsed and unused, a
25x entry started 3.6 % from liquidation and the watchdog closed it 1 s after the fill (two fees)."""

from __future__ import annotations

from tests.live.rig import FAST, LiveRig
from tui_trader.domain.events import OrderUpdated
from tui_trader.domain.models import OrderState
from tui_trader.domain.strategy.state import Phase


def strategy(leverage: int) -> dict:
    order = {**FAST["z1_entry"]["order"], "leverage": leverage, "stop_loss_pct": 3}
    return {**FAST, "z1_entry": {**FAST["z1_entry"], "order": order},
            "global_limits": {"warmup_s": 0, "max_leverage": 25, "min_entry_liq_distance_pct": 20}}


async def pump(rig: LiveRig) -> None:
    await rig.hold(60000.0, 12)
    await rig.until(lambda: any(e.order.reason.startswith("Z1") for e in rig.of(OrderUpdated)), price=63600.0,
                    max_s=20)


# 20x, not the 25x: the risk guard's default max_leverage (20) refuses 25x before this rule is reached
async def test_a_20x_entry_with_min_entry_liq_distance_20_is_refused_and_nothing_is_sent(fake, tmp_path):
    rig = await LiveRig(fake, tmp_path / "live.sqlite", strategy=strategy(20)).start()
    try:
        await pump(rig)
        [refused] = [e.order for e in rig.of(OrderUpdated)]
        assert refused.state is OrderState.REJECTED
        assert "from entry at 20x" in refused.reason and "min_entry_liq_distance_pct 20 %" in refused.reason
        assert fake.calls["create"] == 0
        await rig.step(1.0)
        assert rig.machine.phase is not Phase.POSITION_ACTIVE
    finally:
        await rig.stop()


async def test_a_3x_entry_is_about_33_percent_from_liquidation_and_goes(fake, tmp_path):
    rig = await LiveRig(fake, tmp_path / "live.sqlite", strategy=strategy(3)).start()
    try:
        await pump(rig)
        assert fake.calls["create"] == 1 and fake.position("BTC_USDT", 2) is not None
    finally:
        await rig.stop()
