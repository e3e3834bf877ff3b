"""Reconciliation when the venue answers something it cannot read (a `DataError`, not a `VenueError`): said,
and the console starts and keeps polling - a malformed reply must never end execution."""

from __future__ import annotations

import asyncio
import logging

from tests.engine.harness import SYM, Stack
from tui_trader.domain.errors import DataError
from tui_trader.domain.events import ErrorRaised
from tui_trader.domain.models import ClientOrderId, Order, OrderSide, OrderType, Side


def broken(what: str):
    async def answer(*_args, **_kw):
        raise DataError(f"malformed {what} object: side missing")
    return answer


async def test_start_up_reconciliation_says_what_it_could_not_read_and_starts():
    async with Stack() as s:
        for name, what in (("positions", "position"), ("account", "account")):
            setattr(s.venue, name, broken(what))
        await s.execution.reconciler.start()
        said = [e.message for e in s.of(ErrorRaised) if e.source == "reconcile"]
        assert any("positions unreadable at start: malformed position" in m for m in said), said
        assert any("account unreadable at start: malformed account" in m for m in said), said


async def test_a_lookup_that_cannot_be_read_is_warned_and_the_polling_goes_on(caplog):
    async with Stack() as s:
        order = Order(ClientOrderId("e-1"), SYM, OrderSide.OPEN_SHORT, OrderType.MARKET, qty_contracts=1)
        s.cache.apply_order(order)
        s.venue.get_order = broken("order")
        s.execution.order_poll_s = 1.0
        caplog.set_level(logging.WARNING)
        poller = asyncio.create_task(s.execution.reconciler.poll_forever())
        try:
            for _ in range(3):
                s.clock.advance(1.0)
                await asyncio.sleep(0)
                await s.execution.idle()
            assert not poller.done()
        finally:
            poller.cancel()
        assert "lookup of e-1 XYZ_USDT failed: malformed order object: side missing" in caplog.text


async def test_a_position_refresh_that_cannot_be_read_is_warned(caplog):
    async with Stack() as s:
        s.venue.positions = broken("position")
        caplog.set_level(logging.WARNING)
        await s.execution.reconciler.refresh_position(SYM, Side.SHORT)
        assert f"positions({SYM}) failed: malformed position object" in caplog.text
