"""The entry lane: checks in order, sends on their own tasks; a slow or stale entry holds nobody up.

Found by the soak (2026-12-02): one symbol's create took 53 s to prove (three ambiguous sends with
lookups and recv-window waits) while another symbol's entry queued behind it and was sent 42 s after
its decision - after its machine had written it off.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from tests.engine.harness import INSTR, SYM, Stack
from tui_trader.domain.events import OrderUpdated
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.models import ClientOrderId, OrderState, Side

OTHER = "ABC_USDT"
INSTRUMENTS = {SYM: INSTR, OTHER: replace(INSTR, symbol=OTHER)}


def entry(cid: str, symbol: str, ts_ms: int) -> OpenPosition:
    return OpenPosition(ts_ms, f"strat:{symbol}", symbol, Side.SHORT, ClientOrderId(cid), 10.0, 3, ref_price=2.0)


def states(s: Stack, cid: str) -> list[OrderState]:
    return [e.order.state for e in s.of(OrderUpdated) if e.order.client_id == cid]


async def test_a_create_still_being_proven_does_not_hold_up_another_symbols_entry():
    async with Stack(instruments=INSTRUMENTS) as s:
        await s.tick(2.0)
        await s.tick(2.0, symbol=OTHER)
        release = asyncio.Event()
        original = s.venue.place_order

        async def slow_for_sym(order):
            if order.symbol == SYM:
                await release.wait()  # the MEXC client proving an ambiguous create: lookups, recv window
            return await original(order)

        s.venue.place_order = slow_for_sym
        now = s.clock.now_ms()
        s.execution.submit(entry("a-1-O", SYM, now))
        s.execution.submit(entry("b-1-O", OTHER, now))
        await asyncio.wait_for(_until(lambda: OrderState.OPEN in states(s, "b-1-O")), 5.0)
        assert states(s, "a-1-O") == [] and s.execution.is_sending(ClientOrderId("a-1-O"))
        release.set()
        await asyncio.wait_for(s.execution.idle(), 5.0)
        assert OrderState.OPEN in states(s, "a-1-O") and not s.execution.is_sending(ClientOrderId("a-1-O"))


async def test_a_live_entry_decided_too_long_ago_is_refused_not_sent_late():
    async with Stack() as s:
        await s.tick(2.0)
        s.execution.max_entry_age_s = 5.0  # what a live venue (MexcVenue) declares
        sent = []
        original = s.venue.place_order

        async def spy(order):
            sent.append(order.client_id)
            return await original(order)

        s.venue.place_order = spy
        s.execution.submit(entry("old-1-O", SYM, s.clock.now_ms() - 6_000))
        s.execution.submit(entry("new-1-O", SYM, s.clock.now_ms() - 4_000))
        await s.execution.idle()
        [old] = [e.order for e in s.of(OrderUpdated) if e.order.client_id == "old-1-O"]
        assert old.state is OrderState.REJECTED and "stale: decided 6.0 s ago" in old.reason
        assert sent == ["new-1-O"] and s.store.orders["old-1-O"][1].state is OrderState.REJECTED


async def test_replays_have_no_age_limit():
    async with Stack() as s:  # the paper venue declares none: a backtest fills at the next tick, however far
        await s.tick(2.0)
        assert s.execution.max_entry_age_s is None
        s.execution.submit(entry("late-1-O", SYM, s.clock.now_ms() - 3_600_000))
        await s.execution.idle()
        assert OrderState.OPEN in states(s, "late-1-O")


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0)


async def test_reconciliation_leaves_a_create_alone_while_its_client_is_still_proving_it():
    """The reconciler once rejected an order 15 s old that the client was still resolving; the client's
    re-send then placed it, unseen (soak, 2026-12-02). Only the client decides a create in flight."""
    async with Stack() as s:
        await s.tick(2.0)
        release = asyncio.Event()
        original = s.venue.place_order

        async def held(order):
            await release.wait()
            return await original(order)

        async def not_found(symbol, client_id, *, close_lane=False):
            return None

        s.venue.place_order, s.venue.get_order = held, not_found
        s.execution.unknown_after_s = 0.0
        s.execution.submit(entry("a-1-O", SYM, s.clock.now_ms()))
        await asyncio.wait_for(_until(lambda: s.execution.is_sending(ClientOrderId("a-1-O"))), 5.0)
        s.clock.advance(60.0)
        assert await s.execution.reconciler.reconcile_orders() == 0
        assert OrderState.REJECTED not in states(s, "a-1-O")
        release.set()
        await asyncio.wait_for(s.execution.idle(), 5.0)
        assert OrderState.OPEN in states(s, "a-1-O")
        s.clock.advance(60.0)
        assert await s.execution.reconciler.reconcile_orders() == 1  # no longer sending: now it may decide
