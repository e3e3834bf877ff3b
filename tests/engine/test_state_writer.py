"""StateWriter: newest value per key, one write per burst, failed writes kept, no stale overwrite."""

from __future__ import annotations

import asyncio

import pytest

from tui_trader.engine.state_writer import StateWriter


class Store:
    def __init__(self) -> None:
        self.data: dict = {}
        self.writes: list = []
        self.fail = 0
        self.gate: asyncio.Event | None = None

    async def put_state(self, key, value) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.writes.append((key, value))
        self.data[key] = value

    async def get_state(self, key):
        return self.data.get(key)


async def test_a_burst_costs_one_write_per_key():
    store = Store()
    w = StateWriter(store)
    for i in range(5):
        w.put("a", {"v": i})
    w.put("b", {"v": 0})
    await w.flush()
    assert store.writes == [("a", {"v": 4}), ("b", {"v": 0})] and not w.pending


async def test_a_failed_write_stays_queued_and_goes_out_later():
    store = Store()
    store.fail = 1
    w = StateWriter(store)
    w.put("a", 1)
    with pytest.raises(OSError):
        await w.flush()
    assert w.pending
    await w.flush()
    assert store.data == {"a": 1}


async def test_a_value_put_during_a_write_is_not_lost():
    store = Store()
    store.gate = asyncio.Event()
    w = StateWriter(store)
    task = asyncio.create_task(w.run())
    w.put("a", 1)
    await asyncio.sleep(0)  # the loop is now inside put_state("a", 1)
    w.put("a", 2)
    store.gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert store.data == {"a": 2} and not w.pending


async def test_flush_is_one_pass_even_if_the_key_keeps_changing():
    """Issue 20: at full replay speed the risk state changed faster than it was written and the flush
    at shutdown chased it until the stop bound cut it (the last state unwritten)."""
    store = Store()
    w = StateWriter(store)
    real_put = store.put_state

    async def put_and_change(key, value):
        await real_put(key, value)
        w.put(key, {"v": value["v"] + 1})  # a new value lands during every write

    store.put_state = put_and_change
    w.put("risk", {"v": 0})
    await asyncio.wait_for(w.flush(), 2)
    assert store.writes == [("risk", {"v": 0})] and w.pending  # the newer value waits for the next pass
