"""Restart against the fake MEXC: what the console left behind is reconciled before any strategy step."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

from tests.conftest import settle
from tests.live.filling_fake import SHORT
from tests.live.rig import SYM, TAG, LiveRig
from tui_trader.domain.events import ErrorRaised, OrderUpdated, PositionChanged
from tui_trader.domain.models import (
    ClientOrderId,
    Order,
    OrderSide,
    OrderState,
    OrderType,
    Position,
    Side,
)
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.order_tracker import EXTERNAL_TAG
from tui_trader.store.db import Database
from tui_trader.store.orders import OrderRepository


async def wait_for(predicate, timeout: float = 10.0) -> None:
    """Poll a condition until it holds; fail at the deadline."""
    async def _wait() -> None:
        while not predicate():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(_wait(), timeout)


async def test_order_in_flight_at_a_crash_that_filled_while_down_is_the_machines_position(fake, tmp_path):
    db = tmp_path / "live.sqlite"
    fake.push_loss = True
    fake.fault("create", "hang_after")  # the exchange fills the entry; its reply never comes
    first = await LiveRig(fake, db, pushes=True).start()
    await first.hold(60000.0, 12)
    for _ in range(10):  # the pump, a second at a time, until the entry is sent (its reply will not come)
        first.trade(63600.0)
        first.advance(1.0)
        await settle()
        if first.machine.phase is Phase.ENTRY_PENDING:
            break
    await wait_for(lambda: len(fake.orders) == 1)  # sent, processed and filled at the exchange
    assert first.machine.phase is Phase.ENTRY_PENDING
    await first.stop()  # killed with the create still waiting for its answer
    left = Database(db)
    [stored] = await OrderRepository(left).load_orders("")
    await left.close()
    assert stored.state is OrderState.NEW  # persisted before it was sent, outcome never learned

    second = await LiveRig(fake, db, pushes=True).start()
    try:
        await second.quiesce()
        sent = Decimal(str(fake.orders[0]["vol"]))  # what the entry asked for, all filled at the exchange
        assert sent > 0 and fake.position(SYM, SHORT)["holdVol"] == sent
        assert second.machine.phase is Phase.POSITION_ACTIVE and second.machine.state.contracts == float(sent)
        [order] = await OrderRepository(second.db).load_orders("")
        assert order.state is OrderState.FILLED and order.filled_contracts == sent and order.tag == TAG
        assert [f.client_id for f in await OrderRepository(second.db).load_fills("")] == [order.client_id]
        held = second.stack.cache.position(SYM, Side.SHORT)
        assert held is not None and held.tag == TAG and held.contract_size == Decimal("0.0001")
        await second.hold(63600.0, 20)  # the machine holds: no second entry, no close
        assert len(fake.orders) == 1 and fake.position(SYM, SHORT)["holdVol"] == sent
    finally:
        await second.stop()


async def seed(db_path, orders: list[Order] = (), positions: list[Position] = ()) -> None:
    db = Database(db_path)
    repo = OrderRepository(db)
    for o in orders:
        await repo.save_order(o, "")
    for p in positions:
        await repo.save_position(p, "", "fill")
    await db.close()


def entry(cid: str, state: OrderState, created_ms: int) -> Order:
    return Order(ClientOrderId(cid), SYM, OrderSide.OPEN_SHORT, OrderType.MARKET, Decimal(10), leverage=3,
                 state=state, reason="Z1", tag=TAG, created_ms=created_ms, updated_ms=created_ms)


def restart_events(rig: LiveRig) -> list[str]:
    return [e.message for e in rig.of(ErrorRaised) if e.source == "reconcile"]


async def test_an_unknown_exchange_position_is_adopted_as_external_and_never_traded(fake, tmp_path):
    fake.positions.append({"positionId": 5, "symbol": SYM, "positionType": 1, "openType": 1, "state": 1,
                           "holdVol": 7, "holdAvgPrice": 59000.0, "leverage": 10, "im": 4.13,
                           "liquidatePrice": 53336.0, "realised": 0})
    rig = await LiveRig(fake, tmp_path / "live.sqlite").start()
    try:
        held = rig.stack.cache.position(SYM, Side.LONG)
        assert held is not None and held.tag == EXTERNAL_TAG and held.contracts == 7
        assert any("adopted as external" in m for m in restart_events(rig))
        assert rig.machine.phase is Phase.MONITORING  # a SHORT strategy's machine: not its position
    finally:
        await rig.stop()


async def test_a_short_opened_elsewhere_after_our_closed_round_trip_is_external_after_a_restart(fake, tmp_path):
    """Our last entry on the side is FILLED but its position closed before the console stopped (the store's
    last snapshot is flat): a short found there at restart was opened by someone else - adopted as
    external, never the machine's. (The console tagged it as ours: the machine adopted and traded it.)"""
    db = tmp_path / "live.sqlite"
    done = replace(entry("old-entry", OrderState.FILLED, 1_000), filled_contracts=Decimal(10))
    opened = Position(SYM, Side.SHORT, Decimal(10), Decimal("0.0001"), Decimal(60000), 3, tag=TAG, updated_ms=1_000)
    await seed(db, [done], [opened, replace(opened, contracts=Decimal(0), updated_ms=2_000)])
    fake.open_position(SYM, SHORT, vol=5)
    rig = await LiveRig(fake, db).start()
    try:
        held = rig.stack.cache.position(SYM, Side.SHORT)
        assert held is not None and held.tag == EXTERNAL_TAG and held.contracts == 5
        assert any("adopted as external" in m for m in restart_events(rig))
        assert rig.machine.phase is Phase.MONITORING
    finally:
        await rig.stop()


async def test_a_local_position_gone_at_the_exchange_is_closed_in_the_store_with_the_reason(fake, tmp_path):
    db = tmp_path / "live.sqlite"
    t0 = fake.now_ms() - 3_600_000
    await seed(db, [replace_filled(entry("fast-BTC-1-O", OrderState.FILLED, t0))],
               [Position(SYM, Side.SHORT, Decimal(10), Decimal("0.0001"), Decimal(60000), 3, tag=TAG, updated_ms=t0)])
    rig = await LiveRig(fake, db).start()
    try:
        flat = [e for e in rig.of(PositionChanged) if e.reason == "reconcile: gone at the exchange"]
        assert len(flat) == 1 and flat[0].position.is_flat and flat[0].position.tag == TAG
        assert await OrderRepository(rig.db).last_open_positions("") == []
        assert any("gone at the exchange" in m for m in restart_events(rig))
    finally:
        await rig.stop()


def replace_filled(order: Order) -> Order:
    return order.with_state(OrderState.FILLED, order.updated_ms, filled_contracts=order.qty_contracts,
                            avg_fill_price=Decimal(60000))


async def test_an_order_left_new_that_never_reached_the_exchange_is_rejected_with_the_reason(fake, tmp_path):
    db = tmp_path / "live.sqlite"
    await seed(db, [entry("fast-BTC-1-O", OrderState.NEW, fake.now_ms() - 60_000)])
    rig = await LiveRig(fake, db).start()
    try:
        [order] = await OrderRepository(rig.db).load_orders("")
        assert order.state is OrderState.REJECTED and "not at the exchange" in order.reason
        assert fake.calls["external"] == 1 and fake.calls["create"] == 0  # looked up, never re-sent
    finally:
        await rig.stop()


async def test_an_order_left_submitted_and_cancelled_at_the_exchange_is_cancelled_in_the_store(fake, tmp_path):
    db = tmp_path / "live.sqlite"
    t0 = fake.now_ms() - 60_000
    await seed(db, [entry("fast-BTC-1-O", OrderState.SUBMITTED, t0)])
    fake.orders.append({"orderId": 77, "symbol": SYM, "externalOid": "fast-BTC-1-O", "vol": 10, "side": 3,
                        "orderType": 1, "openType": 1, "leverage": 3, "price": 70000, "state": 4, "dealVol": 0,
                        "positionId": 0, "createTime": t0, "updateTime": t0 + 5000})
    rig = await LiveRig(fake, db).start()
    try:
        [order] = await OrderRepository(rig.db).load_orders("")
        assert order.state is OrderState.CANCELLED and order.venue_order_id == "77" and order.tag == TAG
        assert [e.order.state for e in rig.of(OrderUpdated)] == [OrderState.CANCELLED]
    finally:
        await rig.stop()
