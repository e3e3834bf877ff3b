"""TraderCore: supervision, crash reporting, orderly stop with no pending tasks left behind."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from tests.conftest import settle
from tui_trader.domain.events import CoreStateChanged, TaskFailed
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.engine.core import TraderCore


class Forever:
    def __init__(self, name):
        self.name = name
        self.cancelled = False
        self.shutdown_called = False

    async def run(self):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def shutdown(self):
        self.shutdown_called = True


class Crasher:
    def __init__(self, name, times=1):
        self.name = name
        self.runs = 0
        self.times = times

    async def run(self):
        self.runs += 1
        await asyncio.sleep(0)
        if self.runs <= self.times:
            raise RuntimeError(f"crash {self.runs}")
        await asyncio.Event().wait()


def make_core():
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    return TraderCore(bus, SimClock(0)), events


async def test_stop_cancels_every_task_and_reports_states():
    core, events = make_core()
    services = [Forever(f"s{i}") for i in range(5)]
    for s in services:
        core.add(s)
    spawned = core.spawn(asyncio.Event().wait(), "one-off")
    async with core:
        await settle()
        assert all(not t.done() for t in core.tasks)
    assert all(s.cancelled and s.shutdown_called for s in services)
    assert spawned.cancelled()
    assert all(t.done() for t in core.tasks)
    states = [e.state for e in events if isinstance(e, CoreStateChanged)]
    assert states == ["starting", "running", "stopping", "stopped"]


async def test_no_task_destroyed_pending_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        core, _ = make_core()
        core.add(Forever("a"))
        async with core:
            await settle()
        del core
        gc.collect()
    assert not [w for w in caught if "destroyed" in str(w.message)]


async def test_crash_of_critical_service_is_reported_and_stops_core():
    core, events = make_core()
    core.add(Crasher("feed", times=99), critical=True)
    core.add(Forever("other"))
    async with core:
        await asyncio.wait_for(core.wait_stop_requested(), 1)
    failed = [e for e in events if isinstance(e, TaskFailed)]
    assert len(failed) == 1 and failed[0].task == "feed" and failed[0].action == "stopping core"
    assert "crash 1" in failed[0].error
    assert core.exit_code == 1


async def test_restartable_service_is_restarted_and_keeps_running():
    core, events = make_core()
    crasher = Crasher("recorder", times=2)
    core.add(crasher, restart=True)
    async with core:
        await settle()
        assert crasher.runs == 1
        core.clock.advance(0.2)  # first back-off
        await settle()
        assert crasher.runs == 2
        core.clock.advance(0.4)  # second back-off doubles
        await settle()
        assert crasher.runs == 3
        assert not core.stop_requested
    failed = [e for e in events if isinstance(e, TaskFailed)]
    assert [e.action for e in failed] == ["restarting", "restarting"]


async def test_non_critical_crash_gives_up_but_core_lives():
    core, events = make_core()
    core.add(Crasher("extra", times=99))
    core.add(Forever("main"))
    async with core:
        await settle(20)
        assert not core.stop_requested
    assert [e.action for e in events if isinstance(e, TaskFailed)] == ["gave up"]


async def test_failed_spawned_task_is_reported():
    core, events = make_core()

    async def boom():
        raise ValueError("spawned failure")

    async with core:
        core.spawn(boom(), "closer")
        await settle()
    assert any(isinstance(e, TaskFailed) and "spawned failure" in e.error for e in events)


async def test_hung_shutdown_is_bounded():
    core, _ = make_core()
    core.stop_timeout_s = 0.05

    class Hangs(Forever):
        async def shutdown(self):
            await asyncio.Event().wait()

    core.add(Hangs("h"))
    async with core:
        pass
    assert core.state == "stopped"


def test_cannot_add_after_start():
    async def go():
        core, _ = make_core()
        async with core:
            with pytest.raises(RuntimeError):
                core.add(Forever("late"))

    asyncio.run(go())


async def test_a_last_service_shuts_down_only_after_every_other_task_has_ended():
    """The store closes last: a service still writing while it stops finishes its write first."""
    order: list[str] = []

    class Writer:
        name = "writer"

        async def run(self):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                order.append("writer ended")
                raise

    class Store:
        name = "store"

        async def run(self):
            await asyncio.Event().wait()

        async def shutdown(self):
            order.append("store closed")

    core = TraderCore(EventBus(), SimClock(0))
    core.add(Store(), critical=True, last=True)
    core.add(Writer())
    async with core:
        await settle()
    assert order == ["writer ended", "store closed"]
    assert all(t.done() for t in core.tasks)


class RaisesOnCancel:
    """A service whose clean-up fails when it is cancelled (the store's `cannot rollback` at stop)."""

    def __init__(self, name):
        self.name = name
        self.runs = 0

    async def run(self):
        self.runs += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("clean-up failed") from None


async def test_an_error_raised_while_being_cancelled_stops_the_service_instead_of_restarting_it():
    """Issue 20 (CI hang): the supervisor took such an error for a crash and restarted the service, so
    the stop's cancel never ended the task and the process never exited."""
    core, events = make_core()
    service = RaisesOnCancel("risk")
    core.add(service, restart=True)
    await core.start()
    await settle()
    await asyncio.wait_for(core.stop(), 5)
    assert core.state == "stopped" and service.runs == 1
    assert all(t.done() for t in core.tasks)
    assert not [e for e in events if isinstance(e, TaskFailed)]
