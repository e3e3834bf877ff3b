"""SimClock: timers fire in time order at their own due time; sleep needs no wall time."""

from __future__ import annotations

import asyncio

from tests.conftest import settle
from tui_trader.engine.clock import SimClock, WallClock


def test_timers_fire_in_order_at_due_time():
    clock = SimClock(1_000)
    seen = []
    clock.call_later(2.0, lambda: seen.append(("b", clock.now_ms())))
    clock.call_later(1.0, lambda: seen.append(("a", clock.now_ms())))
    cancelled = clock.call_later(1.5, lambda: seen.append(("x", clock.now_ms())))
    cancelled.cancel()
    clock.advance(1.9)
    assert seen == [("a", 2_000)]
    clock.advance(5)
    assert seen == [("a", 2_000), ("b", 3_000)]
    assert clock.now_ms() == 7_900


def test_clock_never_goes_backwards():
    clock = SimClock(5_000)
    clock.advance_to(1_000)
    assert clock.now_ms() == 5_000


async def test_sleep_wakes_only_when_advanced():
    clock = SimClock(0)
    done = asyncio.Event()

    async def sleeper():
        await clock.sleep(30)
        done.set()

    task = asyncio.create_task(sleeper())
    await settle()
    clock.advance(29.999)
    await settle()
    assert not done.is_set()
    clock.advance(0.001)
    await settle()
    assert done.is_set()
    await task


async def test_wall_clock_units():
    c = WallClock()
    assert abs(c.now_ms() / 1000 - c.time()) < 1
