"""The kill switch on the fake MEXC when the exchange misbehaves: every position is closed regardless.

Found by trying it (issue 19): close-all first listed and cancelled open orders on the breaker lane;
when that call failed or the entry breaker was open, the sequence ended before the first close.
"""

from __future__ import annotations

import asyncio
import random
import time

from tests.live.filling_fake import LONG, SHORT, FillingMexc
from tests.live.rig import LiveRig
from tests.venues.mexc.fake_exchange import Fault
from tui_trader.domain.events import BreakerChanged, EmergencyCloseProgress, ErrorRaised

SYMBOLS = ["BTC_USDT", "ETH_USDT"]


async def positions_everywhere(fake: FillingMexc, tmp_path) -> LiveRig:
    fake.open_position("BTC_USDT", SHORT, 40, 60000.0)
    fake.open_position("BTC_USDT", LONG, 30)
    fake.open_position("ETH_USDT", SHORT, 9, 3000.0)
    rig = await LiveRig(fake, tmp_path / "live.sqlite", symbols=SYMBOLS, strategy=None).start()
    assert len(rig.stack.cache.positions) == 3  # adopted at start
    return rig


async def close_all(rig: LiveRig, deadline_s: float = 20.0) -> float:
    """Press close-all; wait (deadline) for the sequence's result; returns wall seconds to flat."""
    assert rig.stack.emergency is not None
    t0 = time.monotonic()
    task = rig.stack.emergency.request_close_all("TEST")
    while not task.done():
        assert time.monotonic() - t0 < deadline_s, "close-all did not finish"
        await asyncio.sleep(0)  # yield; the SimClock is moved so close retries' back-offs elapse
        rig.advance(0.05)
        await asyncio.wait({task}, timeout=0.01)
    assert task.result() is True
    return time.monotonic() - t0


def flat_everywhere(fake: FillingMexc) -> bool:
    return all(fake.position(s, t) is None for s in SYMBOLS for t in (LONG, SHORT))


async def test_close_all_with_open_orders_failing_closes_every_position(fake, tmp_path):
    rig = await positions_everywhere(fake, tmp_path)
    try:
        fake.fault("open_orders", "http500", times=1000)
        await close_all(rig)
        assert flat_everywhere(fake)
        assert any("open orders unreadable" in e.message for e in rig.of(ErrorRaised))
        assert [e.stage for e in rig.of(EmergencyCloseProgress)][-1] == "done"
    finally:
        await rig.stop()


async def test_close_all_with_the_entry_breaker_open_closes_every_position(fake, tmp_path):
    rig = await positions_everywhere(fake, tmp_path)
    try:
        rig.parts.venue.client.breaker._cb.open()  # what a run of entry failures leaves behind
        assert rig.parts.venue.client.breaker.state == "open"
        await close_all(rig)
        assert flat_everywhere(fake)
    finally:
        await rig.stop()


async def test_close_all_with_30_percent_502_on_create_closes_every_position(fake, tmp_path):
    rig = await positions_everywhere(fake, tmp_path)
    try:
        rng = random.Random(3)
        fake.faults["create"].extend(Fault("html") for _ in range(40) if rng.random() < 0.3)  # HTML 502 pages
        assert fake.faults["create"]
        seconds = await close_all(rig)
        assert flat_everywhere(fake)
        closes = [o for o in fake.orders if o["side"] in (2, 4) and o["externalOid"]]
        assert len(closes) >= 3 and seconds < 20
    finally:
        await rig.stop()


async def test_breaker_transitions_are_events(fake, tmp_path):
    """Issue 19, item 7: the entry breaker's open / half-open / closed reach the bus (the header shows them)."""
    rig = await LiveRig(fake, tmp_path / "live.sqlite", symbols=SYMBOLS, strategy=None).start()
    try:
        breaker = rig.parts.venue.client.breaker
        breaker._cb.open()
        breaker._cb.half_open()
        breaker._cb.close()
        moves = [(e.venue, e.old, e.new) for e in rig.of(BreakerChanged)]
        assert moves == [("mexc", "closed", "open"), ("mexc", "open", "half-open"), ("mexc", "half-open", "closed")]
    finally:
        await rig.stop()


async def test_close_all_is_not_queued_behind_entries_and_stays_within_mexcs_limits(fake, tmp_path):
    """Closes respect MEXC's rate limit without waiting behind entries (issue 19, deliver 3): 30
    entry-lane creates want the order endpoint when close-all is pressed; the fake answers 510
    beyond 20 requests / 2 s as MEXC does."""
    from tests.conftest import settle
    from tui_trader.venues.mexc.rate_limit import CLOSE_RESERVE

    fake.enforce_rate_limits = True
    rig = await positions_everywhere(fake, tmp_path)
    try:
        rest = rig.parts.venue.client.rest
        budget, path = rest.budget, rest.config.order_path
        entries = [asyncio.create_task(budget.take(path, close=False)) for _ in range(30)]
        await settle()
        ahead = sum(t.done() for t in entries)
        assert ahead == 20 - CLOSE_RESERVE  # the entry burst took all but the closes' reserve; 14 wait
        await close_all(rig)
        assert flat_everywhere(fake)
        assert budget.waited_s["close"] < 0.05  # 3 closes went ahead of 14 waiting entries
        assert sum(fake.over_limit.values()) == 0  # and MEXC never answered 510
        for t in entries:
            t.cancel()
    finally:
        await rig.stop()
