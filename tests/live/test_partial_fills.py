"""End to end on the fake MEXC: orders filled in steps (``FakeMexc.partial_fill_vol``), as MEXC fills them.

MEXC fills an order in steps: its ``dealVol`` rises, its state stays 2 until it is complete (3), and each
step is a deal, an order and a position push; a market order can also end partially filled with the
rest cancelled (state 4, dealVol > 0, ``market_remainder = "cancel"``). Whatever path reports the steps
(private pushes, or the REST lookups when the pushes are lost), a trader needs: the strategy holding what
the exchange holds at every step, the watchdog watching it at that size, each step stored once as a fill
with the exchange's quantity, price and fee, the exit closing exactly what is held (and what a partly
filled close left behind), and the stored trade with the exchange's profit and fees.

The steps are driven one at a time: a price print (``rig.trade``) makes the fake match once more, and
the test waits (event-driven, with a deadline) until the console has seen that step before the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.live.filling_fake import SHORT, FillingMexc
from tests.live.rig import SYM, LiveRig
from tests.live.test_push_ordering import (
    assert_fills_once,
    assert_flat_everywhere,
    assert_never_backwards,
    our_orders,
)
from tui_trader.backtest.recorder import stored_trades
from tui_trader.domain.models import Side
from tui_trader.domain.strategy.state import Phase

PUMP, DROP = 63600.0, 61000.0  # the FAST strategy enters short on the pump, takes profit on the drop
STEP = 20  # contracts a matching step fills at most; the FAST entry is 47 contracts at the pump
POLL_S = 2.0  # the venue's order lookup period (MexcVenue.order_poll_s)


class Console:
    """Waits (event-driven, with a deadline) for a condition on the console's state: woken by every event
    it publishes and by every round of order lookups (counted by wrapping the reconciler's round)."""

    def __init__(self, rig: LiveRig) -> None:
        self.rig = rig
        self.rounds = 0
        self._wake = asyncio.Event()
        rig.bus.subscribe(lambda _ev: self._wake.set(), name="test.wake")
        reconciler = rig.stack.execution.reconciler
        inner = reconciler.reconcile_orders

        async def counted(*, startup: bool = False) -> int:
            try:
                return await inner(startup=startup)
            finally:
                self.rounds += 1
                self._wake.set()

        reconciler.reconcile_orders = counted  # type: ignore[method-assign]

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        async def _loop() -> None:
            while not predicate():
                self._wake.clear()
                await self._wake.wait()
        await asyncio.wait_for(_loop(), timeout)

    async def until(self, predicate: Callable[[], bool], *, lookups: bool = False, rounds: int = 8,
                    timeout: float = 3.0) -> None:
        """Until `predicate()`. `lookups` (private pushes lost): time moves a lookup period at a time, no
        price print (the fake matches nothing), and each round of lookups is waited for - at most `rounds`."""
        await self.rig.quiesce()
        for _ in range(rounds if lookups else 1):
            if predicate():
                return
            if lookups:
                before = self.rounds
                self.rig.advance(POLL_S)
                await self._wait(lambda b=before: predicate() or self.rounds > b, timeout)
            else:
                await self._wait(predicate, timeout)
            await self.rig.quiesce()
        assert predicate(), f"not reached after {rounds} rounds of order lookups"


def ours(fake: FillingMexc, side: int) -> list[dict[str, Any]]:
    return [o for o in our_orders(fake) if o["side"] == side]


def held(fake: FillingMexc) -> Decimal:
    p = fake.position(SYM, SHORT)
    return Decimal(str(p["holdVol"])) if p is not None else Decimal(0)


def console_holds(rig: LiveRig, order: dict[str, Any]) -> bool:
    """The console has seen the exchange's latest step of `order`: its cumulative volume, the position's size
    in the cache, the strategy machine and the watchdog."""
    known = rig.stack.cache.orders.get(order["externalOid"])
    if known is None or known.filled_contracts != Decimal(str(order["dealVol"])):
        return False
    hold = held(rig.fake)
    cached = rig.stack.cache.position(SYM, Side.SHORT)
    assert rig.stack.watchdog is not None
    watch = rig.stack.watchdog.watches.get((SYM, Side.SHORT))
    if hold == 0:
        return cached is None and watch is None
    return (cached is not None and cached.contracts == hold and Decimal(str(rig.machine.state.contracts)) == hold
            and watch is not None and Decimal(str(watch.contracts)) == hold)


async def start(fake: FillingMexc, tmp_path, **kw: Any) -> tuple[LiveRig, Console]:
    rig = await LiveRig(fake, tmp_path / "live.sqlite", pushes=True, **kw).start()
    await fake.wait_ws(lambda f: len(f.ws_logged_in) == 1)
    return rig, Console(rig)


async def enter(rig: LiveRig) -> dict[str, Any]:
    """Baseline, then the pump until the entry has its first fill at the exchange; returns the entry order."""
    fake = rig.fake
    await rig.hold(60000.0, 12)
    await rig.until(lambda: len(fake.deals) >= 1, price=PUMP, max_s=40)
    [entry] = ours(fake, 3)
    return entry


async def print_until(rig: LiveRig, predicate: Callable[[], bool], *, price: float, max_s: int = 40) -> None:
    """`rig.until` that stops time as soon as `predicate()` holds after a print (the close retry's back-off
    does not run out before the test has looked)."""
    for _ in range(max_s):
        rig.trade(price)
        await rig.quiesce()
        if predicate():
            return
        rig.advance(1.0)
    raise AssertionError(f"condition not reached within {max_s} simulated seconds")


async def steps(rig: LiveRig, console: Console, order: dict[str, Any], price: float, *, lookups: bool,
                sizes: list[Decimal]) -> None:
    """Each step of `order` seen by the console before the next price print makes the next one; the console
    stays in step with the exchange's position, whose sizes are appended to `sizes`."""
    fake = rig.fake
    for _ in range(10):
        await console.until(lambda: console_holds(rig, order), lookups=lookups)
        sizes.append(held(fake))
        if order["state"] != 2:
            return
        rig.trade(price)  # a price print: the fake matches the order's rest once more
    raise AssertionError(f"{order['externalOid']} still open after 10 steps")


async def assert_books(rig: LiveRig) -> None:
    """Every deal of our orders is one stored fill (distinct ids) with the exchange's quantity, price, fee and
    profit; each order row has the exchange's final state and volume; the one closed SHORT trade has the
    exchange's volume, the close deals' profit as gross P&L and every deal's fee."""
    await assert_fills_once(rig)
    fake = rig.fake
    cids = {o["orderId"] for o in our_orders(fake)}
    deals = [d for d in fake.deals if d["orderId"] in cids]
    opened = sum(Decimal(str(d["vol"])) for d in deals if d["side"] == 3)
    closes = [d for d in deals if d["side"] == 2]
    [trade] = await stored_trades(rig.db, "")
    assert trade.closed and trade.contracts == opened > 0
    assert trade.exit_qty == sum(Decimal(str(d["vol"])) for d in closes) == opened
    assert trade.gross_pnl == sum(Decimal(str(d["profit"])) for d in closes) > 0
    assert trade.fees == sum(Decimal(str(d["fee"])) for d in deals)


async def entry_in_steps(rig: LiveRig, console: Console, *, lookups: bool) -> None:
    """The entry (47 contracts) filled 20 / 40 / 47, each step seen by the console before the next."""
    fake = rig.fake
    entry = await enter(rig)
    assert (entry["state"], entry["dealVol"]) == (2, STEP)
    sizes: list[Decimal] = []
    await steps(rig, console, entry, PUMP, lookups=lookups, sizes=sizes)
    vol = Decimal(str(entry["vol"]))
    assert sizes == [Decimal(STEP), Decimal(2 * STEP), vol] and entry["state"] == 3
    assert [d["vol"] for d in fake.deals] == [STEP, STEP, int(vol) - 2 * STEP]
    assert rig.machine.phase is Phase.POSITION_ACTIVE
    assert rig.machine.state.entry_price == pytest.approx(float(fake.position(SYM, SHORT)["holdAvgPrice"]))


async def exit_in_steps(rig: LiveRig, console: Console, *, lookups: bool, step: int = STEP) -> None:
    """The ZE1 close of all that is held, filled `step` contracts at a time, each step seen by the console
    before the next."""
    fake = rig.fake
    vol = held(fake)
    fake.partial_fill_vol = step
    await rig.until(lambda: len(ours(fake, 2)) >= 1, price=DROP, max_s=40)  # ZE1: the close, its first step
    close = ours(fake, 2)[0]
    assert Decimal(str(close["vol"])) == vol  # exactly what is held
    sizes: list[Decimal] = []
    await steps(rig, console, close, DROP, lookups=lookups, sizes=sizes)
    assert fake.calls["create"] == len(our_orders(fake)) == 2, "a create sent again under an id already used"
    assert sizes == [max(vol - k * step, Decimal(0)) for k in range(1, -(-int(vol) // step) + 1)]
    assert close["state"] == 3


async def finish(rig: LiveRig, creates: int = 2) -> None:
    """Back to MONITORING after one entry and `creates` - 1 close legs, no id sent twice, the books and the
    console right."""
    fake = rig.fake
    await rig.until(lambda: rig.machine.phase is Phase.MONITORING, price=DROP, max_s=20)
    await rig.hold(DROP, 3)
    assert fake.calls["create"] == len(our_orders(fake)) == creates  # each sent once
    assert len({o["externalOid"] for o in our_orders(fake)}) == creates  # under ids of its own
    await assert_books(rig)
    assert_never_backwards(rig)
    await assert_flat_everywhere(rig)


async def test_entry_and_exit_filled_in_steps_reported_by_private_pushes(fake, tmp_path):
    fake.partial_fill_vol = STEP
    rig, console = await start(fake, tmp_path, order_poll_s=3600.0)  # the pushes must do it all
    try:
        await entry_in_steps(rig, console, lookups=False)
        await exit_in_steps(rig, console, lookups=False)
        await finish(rig)
        assert fake.calls["external"] == 0
    finally:
        await rig.stop()


async def test_entry_filled_in_steps_found_by_rest_lookups_with_the_pushes_lost(fake, tmp_path):
    fake.partial_fill_vol = STEP
    fake.push_loss = True
    rig, console = await start(fake, tmp_path)
    try:
        await entry_in_steps(rig, console, lookups=True)
        fake.partial_fill_vol = None  # the close fills whole (its steps: the next test)
        await finish(rig)
        assert fake.calls["external"] > 0 and fake.private_pushes == []
    finally:
        await rig.stop()


async def test_exit_filled_in_steps_found_by_rest_lookups_with_the_pushes_lost(fake, tmp_path):
    """10 contracts a step, a lookup period (2 s) each: the close is still working when the close lane's wait
    for it (close_fill_timeout_s, 5 s) runs out. Its rest is cancelled (never sent again under its id) and a
    new leg closes what is left: every deal booked once, the trade's exit = its entry."""
    fake.push_loss = True
    rig, console = await start(fake, tmp_path)
    try:
        await rig.hold(60000.0, 12)
        await rig.until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, price=PUMP, max_s=40)
        fake.partial_fill_vol = 10
        await rig.until(lambda: len(ours(fake, 2)) >= 1, price=DROP, max_s=40)  # ZE1: the close, its first step
        first = ours(fake, 2)[0]
        for _ in range(10):  # a print only once the console has found the last step: 2 s or more a step
            await console.until(lambda: console_holds(rig, first), lookups=True)
            if first["state"] != 2:
                break
            rig.trade(DROP)
        await rig.until(lambda: len(ours(fake, 2)) >= 2, price=DROP, max_s=20)
        assert first["state"] == 4 and 0 < Decimal(str(first["dealVol"])) < Decimal(str(first["vol"]))
        await finish(rig, creates=len(our_orders(fake)))
        assert fake.calls["external"] > 0 and fake.private_pushes == []
    finally:
        await rig.stop()


async def test_a_close_still_working_when_its_wait_runs_out_is_not_sent_again_under_its_id(fake, tmp_path):
    """Pushes on: the close fills 20 and its rest waits for the market (no print for 8 s, past the close lane's
    5 s wait). The order is live at MEXC: a second create with the same externalOid makes two orders MEXC
    knows by one id (single creates are not de-duplicated), and its answer replaces the first one's state."""
    rig, console = await start(fake, tmp_path)
    try:
        await rig.hold(60000.0, 12)
        await rig.until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, price=PUMP, max_s=40)
        fake.partial_fill_vol = STEP
        await print_until(rig, lambda: len(ours(fake, 2)) >= 1, price=DROP)
        [close] = ours(fake, 2)
        await console.until(lambda: console_holds(rig, close))
        assert close["state"] == 2 and rig.machine.phase is Phase.EXIT_PENDING
        for _ in range(8):  # no print: the rest is not matched
            await rig.step(1.0)
        await fake.settle()
        again = fake.orders_with(close["externalOid"])[1:]
        assert again == [], f"the working close sent again under its id: {[(o['vol'], o['state']) for o in again]}"
        assert close["state"] == 4 and close["dealVol"] == STEP  # its rest cancelled, its 20 booked
        await console.until(lambda: console_holds(rig, close))
        assert_never_backwards(rig)
        await finish(rig, creates=len(our_orders(fake)))
        assert len(our_orders(fake)) >= 3  # the next leg closed the rest
    finally:
        await rig.stop()


async def test_a_close_filled_unseen_is_found_when_cancelling_its_rest_fails(fake, tmp_path):
    """The close fills in steps at the exchange with its pushes lost and no lookups. When its wait runs out the
    close lane cancels its rest; MEXC answers 2041 (already completed): the order is looked up and booked -
    flat, no second leg, the trade's exit, P&L and fees the exchange's (the unseen steps are one fill: the
    lookup sees their sum)."""
    rig, _ = await start(fake, tmp_path, order_poll_s=3600.0)
    try:
        await rig.hold(60000.0, 12)
        await rig.until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, price=PUMP, max_s=40)
        fake.partial_fill_vol, fake.push_loss = STEP, True
        await print_until(rig, lambda: len(ours(fake, 2)) >= 1, price=DROP)
        [close] = ours(fake, 2)
        for _ in range(3):  # the rest fills at the exchange; the console hears nothing of it
            rig.trade(DROP)
            await rig.quiesce()
        assert close["state"] == 3 and rig.stack.cache.orders[close["externalOid"]].filled_contracts < STEP + 1
        await rig.until(lambda: rig.machine.phase is Phase.MONITORING, price=DROP, max_s=20)
        assert fake.calls["cancel_external"] >= 1 and len(our_orders(fake)) == 2
        deals = [d for d in fake.deals if d["orderId"] in {o["orderId"] for o in our_orders(fake)}]
        [trade] = await stored_trades(rig.db, "")
        assert trade.closed and trade.exit_qty == trade.contracts == Decimal(str(close["vol"]))
        assert trade.gross_pnl == sum(Decimal(str(d["profit"])) for d in deals if d["side"] == 2) > 0
        assert trade.fees == sum(Decimal(str(d["fee"])) for d in deals)
        await assert_flat_everywhere(rig)
    finally:
        await rig.stop()


async def test_market_entry_partly_filled_with_the_rest_cancelled_holds_the_part(fake, tmp_path):
    fake.partial_fill_vol, fake.market_remainder = STEP, "cancel"
    rig, console = await start(fake, tmp_path)
    try:
        entry = await enter(rig)
        assert (entry["state"], entry["dealVol"], entry["errorCode"]) == (4, STEP, 21) and entry["vol"] > STEP
        await console.until(lambda: console_holds(rig, entry))
        assert rig.machine.phase is Phase.POSITION_ACTIVE and rig.machine.state.contracts == STEP  # not 0, not 47
        await rig.hold(PUMP, 45)  # past the entry's fill timeout and its write-off (4 x 10 s)
        assert len(ours(fake, 3)) == 1  # nothing sent to make up the difference
        assert rig.machine.phase is Phase.POSITION_ACTIVE and rig.machine.state.contracts == STEP
        assert held(fake) == STEP
        await rig.until(lambda: rig.machine.phase is Phase.MONITORING, price=DROP, max_s=40)
        await rig.hold(DROP, 3)
        [close] = ours(fake, 2)
        assert (close["vol"], close["dealVol"], close["state"]) == (STEP, STEP, 3)  # the part held, closed
        await assert_books(rig)
        assert_never_backwards(rig)
        await assert_flat_everywhere(rig)
    finally:
        await rig.stop()


async def test_close_partly_filled_with_the_rest_cancelled_is_not_flat_and_the_rest_is_closed(fake, tmp_path):
    rig, console = await start(fake, tmp_path)
    try:
        await rig.hold(60000.0, 12)
        await rig.until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, price=PUMP, max_s=40)
        vol = held(fake)
        fake.partial_fill_vol, fake.market_remainder = STEP, "cancel"  # the close: 20 filled, the rest cancelled
        await print_until(rig, lambda: len(ours(fake, 2)) >= 1, price=DROP)  # ZE1: the close, time stopped
        [close] = ours(fake, 2)
        assert (close["vol"], close["state"], close["dealVol"]) == (vol, 4, STEP)
        await console.until(lambda: console_holds(rig, close))  # the rest is still held, watched, the machine's
        assert held(fake) == vol - STEP and rig.machine.phase is Phase.EXIT_PENDING
        await rig.until(lambda: rig.machine.phase is Phase.MONITORING, price=DROP, max_s=40)
        await rig.hold(DROP, 3)
        closes = ours(fake, 2)  # each leg for what was left: 47 -> 27 -> 7
        assert [(o["vol"], o["dealVol"], o["state"]) for o in closes] == [
            (vol, STEP, 4), (vol - STEP, STEP, 4), (vol - 2 * STEP, vol - 2 * STEP, 3)]
        await assert_books(rig)
        assert_never_backwards(rig)
        await assert_flat_everywhere(rig)
    finally:
        await rig.stop()
