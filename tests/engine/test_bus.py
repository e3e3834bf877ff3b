"""Event bus: inline handlers, bounded queues with declared policies, no stalls, no lost errors."""

from __future__ import annotations

import asyncio

from tests.conftest import settle
from tui_trader.domain.events import ErrorRaised, EventsDropped, FeedStateChanged, LogMessage, TradeTick
from tui_trader.engine.bus import EventBus, Policy


def tick(ts, sym="X", price=1.0):
    return TradeTick(ts, sym, price, 1.0)


def test_inline_handlers_receive_matching_types_only():
    bus = EventBus()
    trades, everything = [], []
    bus.subscribe(trades.append, [TradeTick])
    bus.subscribe(everything.append)
    bus.publish(tick(1))
    bus.publish(LogMessage(2, "INFO", "t", "hi"))
    assert [e.ts_ms for e in trades] == [1]
    assert [e.ts_ms for e in everything] == [1, 2]


def test_events_published_during_dispatch_are_delivered_after_in_order():
    bus = EventBus()
    order = []

    def first(ev):
        order.append(("first", ev.ts_ms))
        if ev.ts_ms == 1:
            bus.publish(tick(2))

    bus.subscribe(first, [TradeTick])
    bus.subscribe(lambda ev: order.append(("second", ev.ts_ms)), [TradeTick])
    bus.publish(tick(1))
    assert order == [("first", 1), ("second", 1), ("first", 2), ("second", 2)]


def test_failing_handler_is_reported_and_others_still_run():
    bus = EventBus()
    seen, errors = [], []

    def broken(ev):
        raise ValueError("boom")

    bus.subscribe(broken, [TradeTick])
    bus.subscribe(seen.append, [TradeTick])
    bus.subscribe(errors.append, [ErrorRaised])
    bus.publish(tick(1))
    assert len(seen) == 1
    assert len(errors) == 1 and "boom" in errors[0].message


def test_every_policy_drops_oldest_when_full_and_says_so():
    bus = EventBus()
    sub = bus.subscribe_queue("slow", Policy.EVERY, maxsize=3)
    for i in range(10):
        bus.publish(tick(i))
    batch = sub.drain()
    assert isinstance(batch[0], EventsDropped) and batch[0].count == 7
    assert [e.ts_ms for e in batch[1:]] == [7, 8, 9]
    assert sub.dropped_total == 7


def test_latest_policy_coalesces_by_key_and_keeps_keyless_events():
    bus = EventBus()
    sub = bus.subscribe_queue("ui", Policy.LATEST, maxsize=100)
    for i in range(5_000):
        bus.publish(tick(i, "A", float(i)))
        bus.publish(tick(i, "B", float(-i)))
    bus.publish(LogMessage(1, "INFO", "x", "one"))
    bus.publish(LogMessage(2, "INFO", "x", "two"))
    out = sub.drain()
    trades = [e for e in out if isinstance(e, TradeTick)]
    assert {(e.symbol, e.price) for e in trades} == {("A", 4999.0), ("B", -4999.0)}
    assert [e.message for e in out if isinstance(e, LogMessage)] == ["one", "two"]


async def test_slow_subscriber_never_blocks_publisher():
    bus = EventBus()
    sub = bus.subscribe_queue("never-reads", Policy.EVERY, maxsize=100)
    for i in range(100_000):  # would deadlock or grow without bound if publish waited
        bus.publish(tick(i))
    assert len(sub) == 100


async def test_async_iteration_ends_after_close():
    bus = EventBus()
    sub = bus.subscribe_queue("reader", Policy.EVERY)
    got = []

    async def reader():
        async for batch in sub:
            got.extend(batch)

    task = asyncio.create_task(reader())
    await settle()
    bus.publish(FeedStateChanged(1, "f", "connected"))
    await settle()
    bus.publish(FeedStateChanged(2, "f", "stalled"))
    bus.close()
    await asyncio.wait_for(task, 1)
    assert [e.state for e in got] == ["connected", "stalled"]
