"""Execution: persisted before sent, sizing, idempotency, one close sequence per position, retries to flat."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.engine.harness import SYM, Stack
from tui_trader.domain.errors import OrderRejected, Retryable, RiskRejected
from tui_trader.domain.events import OrderFilled, OrderUpdated, PositionChanged
from tui_trader.domain.intents import ClosePosition, OpenPosition
from tui_trader.domain.models import ClientOrderId, OrderState, Side


def open_intent(cid="s-XYZ-1-O", size=10.0, lev=3, side=Side.SHORT, **kw):
    return OpenPosition(0, "strat:XYZ_USDT", SYM, side, ClientOrderId(cid), size, lev, **kw)


def close_intent(cid="s-XYZ-1-X", side=Side.SHORT, reason="E1"):
    return ClosePosition(0, "strat:XYZ_USDT", SYM, side, ClientOrderId(cid), reason)


async def test_entry_is_persisted_before_the_venue_sees_it_and_sized_on_margin():
    async with Stack() as s:
        await s.tick(2.0)
        seen_in_store = []
        original = s.venue.place_order

        async def spy(order):
            seen_in_store.append(order.client_id in s.store.orders)
            return await original(order)

        s.venue.place_order = spy
        s.execution.submit(open_intent(stop_loss_pct=5, take_profit_pct=25))
        await s.execution.idle()
        assert seen_in_store == [True]
        [order] = [e.order for e in s.of(OrderUpdated) if e.order.state is OrderState.OPEN]
        # margin 10 % of 10 000 = 1 000 USDT x 3 = 3 000 notional / 2.0 = 1 500 contracts
        assert order.qty_contracts == D(1500)
        assert order.stop_loss_price == D("2.1") and order.take_profit_price == D("1.5")
        await s.tick(2.0)
        [pos] = [e.position for e in s.of(PositionChanged)]
        assert pos.contracts == D(1500) and pos.tag == "strat:XYZ_USDT"
        assert s.cache.position(SYM, Side.SHORT) == pos


async def test_same_intent_twice_sends_one_order():
    async with Stack() as s:
        await s.tick(2.0)
        s.execution.submit(open_intent())
        s.execution.submit(open_intent())
        await s.execution.idle()
        await s.tick(2.0)
        assert len(s.of(OrderFilled)) == 1


async def test_risk_rejection_is_an_order_event_with_the_reason():
    class NoEntries:
        def check_open(self, intent, account, open_positions, pending):
            raise RiskRejected("trading state is REDUCING")

    async with Stack(risk=NoEntries()) as s:
        await s.tick(2.0)
        s.execution.submit(open_intent())
        await s.execution.idle()
        [ev] = s.of(OrderUpdated)
        assert ev.order.state is OrderState.REJECTED and "REDUCING" in ev.order.reason
        assert s.store.orders["s-XYZ-1-O"][1].state is OrderState.REJECTED


async def test_no_price_no_order():
    async with Stack() as s:
        s.execution.submit(open_intent())
        await s.execution.idle()
        [ev] = s.of(OrderUpdated)
        assert ev.order.state is OrderState.REJECTED and "no fresh price" in ev.order.reason


async def opened(s):
    await s.tick(2.0)
    s.execution.submit(open_intent())
    await s.execution.idle()
    await s.tick(2.0)
    assert s.cache.position(SYM, Side.SHORT) is not None


async def test_close_sequence_is_joined_not_duplicated():
    async with Stack() as s:
        await opened(s)
        first = s.execution.close(close_intent())
        second = s.execution.close(close_intent("other-id", reason="LIQ"))
        assert first is second
        await s.execution.idle()  # the close order is sent...
        await s.tick(2.0)  # ...and fills at the next tick
        assert first.done()
        closes = [e.fill for e in s.of(OrderFilled) if e.fill.side.is_close]
        assert len(closes) == 1
        assert s.cache.position(SYM, Side.SHORT) is None


async def test_close_that_fails_twice_then_succeeds_ends_flat_with_new_leg_ids():
    async with Stack() as s:
        await opened(s)
        original = s.venue.place_order
        failures = {"n": 0}

        async def flaky(order):
            if order.reduce_only and failures["n"] < 2:
                failures["n"] += 1
                raise Retryable("connection reset")
            return await original(order)

        s.venue.place_order = flaky
        task = s.execution.close(close_intent())
        await s.execution.idle()
        for _ in range(5):  # retry back-off 0.5 s, 1 s on the simulated clock
            await s.tick(2.0, dt_ms=1000)
        assert task.done()
        assert s.cache.position(SYM, Side.SHORT) is None
        ids = [e.order.client_id for e in s.of(OrderUpdated) if e.order.reduce_only and e.order.state is OrderState.REJECTED]
        assert ids == ["s-XYZ-1-X", "s-XYZ-1-X2"]
        filled = [e.fill.client_id for e in s.of(OrderFilled) if e.fill.side.is_close]
        assert filled == ["s-XYZ-1-X3"]


async def test_close_of_missing_position_counts_as_flat():
    async with Stack() as s:
        await opened(s)
        s.venue.ledger.positions.clear()  # the exchange SL got there first
        task = s.execution.close(close_intent())
        await s.execution.idle()
        await task
        flat = [e.position for e in s.of(PositionChanged)][-1]
        assert flat.contracts == 0 and s.cache.position(SYM, Side.SHORT) is None


async def test_permanent_close_failure_is_raised_loudly():
    from tui_trader.domain.events import ErrorRaised

    async with Stack() as s:
        await opened(s)

        async def refuse(order):
            raise OrderRejected("contract not allowed for API", code=1002)

        s.venue.place_order = refuse
        task = s.execution.close(close_intent())
        with pytest.raises(OrderRejected):
            await task
        assert any(e.level == "CRITICAL" and "CLOSE FAILED" in e.message for e in s.of(ErrorRaised))


async def test_a_started_close_is_sent_at_the_feeds_next_turn_not_after_the_burst():
    """A feed handing over buffered messages calls `bus.give_turn()` between them: a close the last
    message started reaches the venue before the next message is handled."""
    from tests.engine.harness import SYM as HSYM
    from tests.engine.harness import Stack
    from tui_trader.domain.intents import ClosePosition, OpenPosition
    from tui_trader.domain.models import ClientOrderId, Side

    async with Stack() as s:
        await s.tick(2.0)
        s.execution.submit(OpenPosition(0, "t:X", HSYM, Side.SHORT, ClientOrderId("e-1"), 10.0, 3))
        await s.execution.idle()
        await s.tick(2.0)
        assert s.cache.position(HSYM, Side.SHORT) is not None
        sent: list[str] = []
        place = s.venue.place_order

        async def spy(order):
            sent.append(order.client_id)
            return await place(order)

        s.venue.place_order = spy
        s.execution.close(ClosePosition(0, "t:X", HSYM, Side.SHORT, ClientOrderId("x-1"), "LIQ"))
        assert s.bus.turn_wanted and sent == []
        await s.bus.give_turn()  # what the feed does after the message
        assert sent == ["x-1"] and not s.bus.turn_wanted
        await s.bus.give_turn()  # nothing wanted: returns without a turn


async def test_a_close_that_finds_the_position_gone_is_rejected_not_left_new():
    """Issue 23: every stop-loss exit left an E1 close order `new` forever - the exchange-side stop closed the
    position first, the close met 2009 and stayed as it was sent. It now ends REJECTED with the reason."""
    async with Stack() as s:
        await s.tick(2.0)
        s.execution.submit(open_intent())
        await s.execution.idle()
        await s.tick(2.0)
        assert s.cache.position(SYM, Side.SHORT) is not None
        s.venue.ledger.positions.clear()  # the exchange-side stop filled; its report has not arrived yet
        await s.execution.close(close_intent())
        await s.execution.idle()
        _, order = s.store.orders["s-XYZ-1-X"]
        assert order.state is OrderState.REJECTED and "no SHORT position" in order.reason
        assert s.cache.position(SYM, Side.SHORT) is None
