"""MEXC's request budget: per-endpoint buckets on the injected clock; closes never wait behind entries."""

from __future__ import annotations

import asyncio

from tests.conftest import settle
from tui_trader.engine.clock import SimClock
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc.rate_limit import CLOSE_RESERVE, LANE_IS_CLOSE, RequestBudget, endpoint_of


def test_a_symbol_in_the_path_is_the_same_endpoint():
    assert endpoint_of(f"{C.PUBLIC}/fair_price/BTC_USDT") == endpoint_of(f"{C.PUBLIC}/fair_price/ETH_USDT")
    assert endpoint_of(f"{C.PRIVATE}/order/create") == f"{C.PRIVATE}/order/create"


async def _taken(budget, path, n, close):
    """Start n takers; return the list that completes, in order, as tasks."""
    done: list[int] = []

    async def one(i):
        await budget.take(path, close)
        done.append(i)

    return done, [asyncio.create_task(one(i)) for i in range(n)]


async def test_twenty_per_two_seconds_then_one_per_100_ms():
    clock = SimClock(0)
    budget = RequestBudget(clock)
    path = f"{C.PRIVATE}/position/open_positions"
    done, tasks = await _taken(budget, path, 20, close=True)
    await settle()
    assert len(done) == 20  # the burst
    done2, more = await _taken(budget, path, 2, close=True)
    await settle()
    assert done2 == []
    clock.advance(0.1)
    await settle()
    assert done2 == [0]  # one token per 100 ms
    clock.advance(0.1)
    await settle()
    assert done2 == [0, 1]
    await asyncio.gather(*tasks, *more)


async def test_entries_leave_the_reserve_and_a_waiting_close_goes_first():
    clock = SimClock(0)
    budget = RequestBudget(clock)
    path = f"{C.PRIVATE}/order/create"
    entries, e_tasks = await _taken(budget, path, 30, close=False)
    await settle()
    assert len(entries) == 20 - CLOSE_RESERVE  # a burst of entries stops short of the closes' reserve
    closes, c_tasks = await _taken(budget, path, CLOSE_RESERVE + 3, close=True)
    await settle()
    assert len(closes) == CLOSE_RESERVE  # the reserve: at once, no wait behind 14 queued entries
    before = len(entries)
    for _ in range(3):  # the next three tokens go to the waiting closes, not the entries queued before them
        clock.advance(0.1)
        await settle()
    assert len(closes) == CLOSE_RESERVE + 3 and len(entries) == before
    assert abs(budget.waited_s["close"] - (0.1 + 0.2 + 0.3)) < 1e-6  # each waited for its own token only
    for _ in range(200):
        clock.advance(0.1)
        await settle()
    assert len(entries) == 30  # entries go on once no close waits
    await asyncio.gather(*e_tasks, *c_tasks)


async def test_the_lane_comes_from_the_context_the_client_sets():
    clock = SimClock(0)
    budget = RequestBudget(clock)
    path = f"{C.PRIVATE}/order/create"
    for _ in range(20 - CLOSE_RESERVE):
        await budget.take(path)  # default lane: entry
    token = LANE_IS_CLOSE.set(True)
    try:
        await asyncio.wait_for(budget.take(path), 1.0)  # a close still gets a reserve token at once
    finally:
        LANE_IS_CLOSE.reset(token)
    waiter = asyncio.create_task(budget.take(path))  # an entry now waits
    await settle()
    assert not waiter.done()
    clock.advance(1.0)
    await settle()
    assert waiter.done()


async def test_contract_detail_is_budgeted_at_one_per_five_seconds():
    clock = SimClock(0)
    budget = RequestBudget(clock)
    await budget.take(C.DETAIL, True)
    second = asyncio.create_task(budget.take(C.DETAIL, True))
    await settle()
    clock.advance(4.9)
    await settle()
    assert not second.done()
    clock.advance(0.1)
    await settle()
    assert second.done()
