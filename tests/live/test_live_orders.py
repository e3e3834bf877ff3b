"""End to end on the fake MEXC: an entry fills, the strategy sees it, exits, goes flat; the store has it all.

Each path that can report an outcome is tried on its own: the REST lookups only (private pushes
lost), private pushes only (REST polling slowed past the test), and pushes that arrive late.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from rich.console import Console

from tests.live.rig import SYM, TAG, LiveRig
from tui_trader.app.trading_cli import print_trades
from tui_trader.backtest.recorder import stored_trades
from tui_trader.domain.events import PositionChanged
from tui_trader.domain.models import Side
from tui_trader.domain.strategy.state import Phase


async def round_trip(rig: LiveRig) -> None:
    """Baseline, a 6 % pump (S1 + Z1: entry), then a 4 % drop (ZE1 at +3 %): the whole life."""
    await rig.hold(60000.0, 12)
    await rig.until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, price=63600.0, max_s=40)
    st = rig.machine.state
    position = rig.fake.position(SYM, 2)
    assert position is not None and st.contracts == float(position["holdVol"]) > 0
    assert st.entry_price == pytest.approx(float(position["holdAvgPrice"]))
    await rig.until(lambda: rig.machine.phase is Phase.MONITORING, price=61000.0, max_s=40)
    assert rig.fake.position(SYM, 2) is None and rig.machine.state.cooldown_until_ms > rig.clock.now_ms()


async def assert_stored(rig: LiveRig) -> None:
    orders = await rig.rows("SELECT client_id, side, state, filled, tag FROM orders WHERE session_id = '' ORDER BY rowid")
    assert [(r["side"], r["state"], r["tag"]) for r in orders] == [(3, "filled", TAG), (2, "filled", TAG)]
    fills = await rig.rows("SELECT client_id, qty, price, fee FROM fills WHERE session_id = ''")
    assert [f["client_id"] for f in fills] == [orders[0]["client_id"], orders[1]["client_id"]]
    assert all(Decimal(f["fee"]) > 0 for f in fills)  # the exchange's fee, not zero
    [trade] = await stored_trades(rig.db, "")
    assert trade.closed and trade.contracts == Decimal(orders[0]["filled"])
    deals = {d["orderId"]: d for d in rig.fake.deals}
    assert trade.gross_pnl == sum(Decimal(str(d["profit"])) for d in deals.values())
    assert trade.gross_pnl > 0  # short from ~63 600 to 61 000
    shell = Console(record=True, width=200)
    assert await print_trades(rig.db, "", console=shell) == 0  # `tui-trader trading trades`, the same rows
    text = shell.export_text()
    assert SYM in text and "SHORT" in text and f"1 closed, 0 open; realised net P&L {trade.net_pnl:.4f} USDT" in text


async def test_entry_fill_exit_flat_by_rest_lookups_only(fake, tmp_path):
    fake.push_loss = True
    rig = await LiveRig(fake, tmp_path / "live.sqlite", pushes=True).start()
    try:
        await round_trip(rig)
        await assert_stored(rig)
        assert len(fake.orders) == 2  # one entry, one close
    finally:
        await rig.stop()


async def test_entry_fill_exit_flat_by_private_pushes_only(fake, tmp_path):
    # the REST lookups would come after the test: the pushes must do it all; each order is stamped after
    # the position push before it, so the flat position is on record before the fill that closed it
    fake.order_stamp_lag_ms = 50
    rig = await LiveRig(fake, tmp_path / "live.sqlite", pushes=True, order_poll_s=3600.0).start()
    try:
        await fake.wait_ws(lambda f: len(f.ws_clients) == 1)
        await round_trip(rig)
        await assert_stored(rig)
        assert fake.calls["external"] == 0  # no lookup was needed
    finally:
        await rig.stop()


async def test_entry_fill_exit_flat_with_late_pushes_and_rest_lookups(fake, tmp_path):
    """Both paths report every outcome, the pushes after the lookups: each fill is stored once, and
    a late push of the position as it was before the close does not bring the closed position back."""
    fake.push_delay_s = 0.3
    rig = await LiveRig(fake, tmp_path / "live.sqlite", pushes=True).start()
    try:
        await fake.wait_ws(lambda f: len(f.ws_clients) == 1)
        await round_trip(rig)
        await fake.settle()  # every late push delivered
        await rig.hold(61000.0, 3)
        assert [e for e in rig.of(PositionChanged) if e.reason == "push"] == []  # all stale: skipped
        assert rig.stack.cache.position(SYM, Side.SHORT) is None and rig.machine.phase is Phase.MONITORING
        await assert_stored(rig)
    finally:
        await rig.stop()



async def test_an_entry_found_filled_by_the_clients_lookup_is_a_fill_and_a_position(fake, tmp_path):
    """Soak finding (2026-12-02): the create's reply is lost after the exchange filled it; the client's
    own lookup finds it FILLED. That answer must be a stored fill and a refreshed position (pushes lost
    too), so the machine holds it and nothing is stacked on top. Before the fix the order was marked
    filled with no fill and no position: the machine wrote the entry off and a second entry doubled it."""
    fake.push_loss = True
    fake.fault("create", "drop_after")  # placed and filled; the connection drops before the answer
    rig = await LiveRig(fake, tmp_path / "live.sqlite", pushes=True, order_poll_s=3600.0).start()
    try:
        await rig.hold(60000.0, 12)
        await rig.run_until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, price=63600.0, max_s=40)
        await rig.quiesce()
        held = rig.stack.cache.position(SYM, Side.SHORT)
        assert held is not None and held.tag == TAG and held.contracts == Decimal(str(fake.orders[0]["vol"]))
        fills = await rig.rows("SELECT client_id, qty FROM fills WHERE session_id = ''")
        assert [(f["client_id"], Decimal(f["qty"])) for f in fills] == [(fake.orders[0]["externalOid"], held.contracts)]
        await rig.hold(63600.0, 60)  # long past 4 x fill_timeout: no write-off, no second entry
        assert len([o for o in fake.orders if o["side"] == 3]) == 1
        assert fake.peak_hold_vol[(SYM, 2)] == held.contracts
    finally:
        await rig.stop()
