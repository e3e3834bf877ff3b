"""Engine layer: the close sequence of one position - reduce-only closes until the venue reports flat.

Its own file because it is the one path that takes risk off, with rules of its own. It works through
its execution's surface (cache, venue, clock, bus, store, report and record), as the reconciler does.

* One sequence per position (`Execution.close` joins a running one); no risk gate, no cooldown, no
  entry breaker, and no wait for the store before a send (issue 19).
* A close that is over for sure - refused, cancelled, or filled while the position is still open - is
  followed by a new leg under a new id (`leg_id`), after the back-off (`close_retry_initial_s`,
  doubling up to `close_retry_max_s`).
* An ambiguous send that a lookup did not find is followed by a new leg under a new id (it may still be
  processed: the order poll goes on looking it up, and books it if it turns up).
* A close the exchange acknowledged that is still working after `close_fill_timeout_s` (a market close
  partly filled, its rest waiting for the book) is never sent again under its id: MEXC keeps a second
  order under the same externalOid, and its reply would overwrite the first one's fills. What is left of
  it is cancelled (its fills stay booked) and the next leg closes whatever the position still holds.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from tui_trader.domain.errors import (
    AmbiguousOrderState,
    Permanent,
    PositionNotFound,
    Retryable,
    VenueError,
)
from tui_trader.domain.events import ErrorRaised, PositionChanged
from tui_trader.domain.intents import ClosePosition, leg_id
from tui_trader.domain.models import (
    ClientOrderId,
    Order,
    OrderSide,
    OrderState,
    OrderType,
    Position,
    Side,
)
from tui_trader.domain.money import to_decimal

if TYPE_CHECKING:
    from tui_trader.engine.execution import Execution

log = logging.getLogger(__name__)

MAX_CLOSE_LEGS = 99
_OVER = (OrderState.REJECTED, OrderState.CANCELLED, OrderState.FILLED)


class Closer:
    def __init__(self, execution: Execution) -> None:
        self.x = execution

    async def run(self, intent: ClosePosition) -> Order | None:
        """Send closes until the venue reports flat. Counts as busy (for `idle()`) while it is
        sending, not while it waits for a fill or a retry timer, which depend on data or time."""
        x = self.x
        leg, delay, cid = 1, x.close_retry_initial_s, intent.client_id
        last: Order | None = None
        busy = True  # marked by Execution.close()
        try:
            while True:
                if not busy:
                    x._mark_busy()
                    busy = True
                working = x.cache.orders.get(cid)
                sent: bool | None
                if working is not None and _working_at_venue(working):
                    sent, last = await self._cancel_rest(working), working
                else:
                    sent, last = await self._attempt(intent, cid, last)
                x._done_one()
                busy = False
                if sent is None:
                    return last
                if sent:
                    x._close_cid[(intent.symbol, intent.side)] = cid
                    last = await self.await_terminal(cid, x.close_fill_timeout_s)
                    if x.cache.position(intent.symbol, intent.side) is None:
                        return last
                    if intent.qty_contracts is not None and last is not None and last.state is OrderState.FILLED:
                        return last
                state = x.cache.orders.get(cid)
                if state is not None and (state.state in _OVER or state.state is OrderState.UNKNOWN):
                    leg += 1  # definitive: a new leg id for the next attempt
                    if leg > MAX_CLOSE_LEGS:
                        raise RuntimeError(f"close of {intent.symbol} gave up after {MAX_CLOSE_LEGS} legs")
                    cid = leg_id(intent.client_id, leg)
                await x.clock.sleep(delay)
                delay = min(delay * 2, x.close_retry_max_s)
        finally:
            if busy:
                x._done_one()

    async def _attempt(self, intent: ClosePosition, cid: ClientOrderId,
                       last: Order | None) -> tuple[bool | None, Order | None]:
        """One send. Returns (None = flat/nothing to close, True = sent, False = failed, retry)."""
        x = self.x
        pos = x.cache.position(intent.symbol, intent.side)
        if pos is None:
            pos = await self.venue_position(intent.symbol, intent.side)
            if pos is None:
                return None, last
        qty = pos.contracts if intent.qty_contracts is None else min(pos.contracts, to_decimal(intent.qty_contracts))
        now = x.clock.now_ms()
        order = Order(cid, intent.symbol, OrderSide.close_for(intent.side), OrderType.MARKET, qty,
                      leverage=pos.leverage, reduce_only=True, position_id=pos.position_id, created_ms=now,
                      updated_ms=now, reason=intent.reason, tag=intent.tag or pos.tag)
        known = x.cache.orders.get(cid)  # sent before under this id, outcome unknown: it keeps what it has
        if known is None:  # known at once, so its reports find it; on disk after the send: a reduce-only close
            x.cache.apply_order(order)  # cannot overshoot, and it waits for no disk (issue 19)
        refused = known or order
        try:
            placed = await x.venue.place_order(order)
        except PositionNotFound as exc:  # flat already (an exchange-side stop went first): the order is over
            await self._refused(refused, f"{intent.reason}: {exc}")
            await self.sync_position(intent.symbol, intent.side)
            return None, last
        except AmbiguousOrderState as exc:  # not found by a lookup, yet it may still be processed: next leg,
            held = x.cache.orders.get(cid, order)  # new id; the order poll goes on looking this one up
            await x._record(held.with_state(OrderState.UNKNOWN, x.clock.now_ms(), reason=f"{intent.reason}: {exc}"))
            return False, last
        except Retryable as exc:
            log.warning("close %s failed (retryable): %s", cid, exc)
            await self._refused(refused, f"{intent.reason}: {exc}")
            return False, last
        except Permanent as exc:
            await self._refused(refused, f"{intent.reason}: {exc}")
            x.bus.publish(ErrorRaised(x.clock.now_ms(), "execution", f"CLOSE FAILED for {intent.symbol}"
                                      f" {intent.side.value}: {exc} - close it by hand", level="CRITICAL"))
            raise
        finally:
            if known is None:
                await x.store.save_order(x.cache.orders.get(cid, order), x.session_id)
        return True, await x._venue_reply(placed)

    async def _refused(self, order: Order, reason: str) -> None:
        """A send refused: the order is over - unless the exchange has it already (an earlier send of the
        same id was acknowledged): this refusal says nothing about that order and must not erase its fills."""
        if order.venue_order_id is None and not order.state.is_terminal:
            await self.x._record(order.with_state(OrderState.REJECTED, self.x.clock.now_ms(), reason=reason))

    async def _cancel_rest(self, order: Order) -> bool:
        """An acknowledged close still working after its wait: cancel what is left of it by its id (the cancel's
        answer, looked up, is booked like any report: fills derived once). False: the sequence goes on, a new
        leg once this one is over."""
        venue = self.x.venue
        try:
            found: Order | None = await venue.cancel_order(order.symbol, order.client_id, close_lane=True)
        except VenueError as exc:  # not cancellable (filled meanwhile?): what the exchange has, looked up
            log.warning("cancel of the working close %s failed: %s", order.client_id, exc)
            try:
                found = await venue.get_order(order.symbol, order.client_id, close_lane=True)
            except VenueError as lookup_exc:
                log.warning("lookup of the working close %s failed: %s", order.client_id, lookup_exc)
                return False
        if found is not None:
            await self.x._venue_reply(found)
        return False

    async def await_terminal(self, cid: ClientOrderId, timeout_s: float) -> Order | None:
        x = self.x
        order = x.cache.orders.get(cid)
        if order is not None and order.state.is_terminal:
            return order
        fut: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        x._waiters.setdefault(cid, []).append(fut)

        def expire() -> None:
            if not fut.done():
                fut.cancel()

        timer = x.clock.call_later(timeout_s, expire)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.cancelled() and not _current_cancelling():
                return x.cache.orders.get(cid)  # timed out: re-check the position
            raise
        finally:
            timer.cancel()

    async def venue_position(self, symbol: str, side: Side) -> Position | None:
        try:
            for p in await self.x.venue.positions(symbol, close_lane=True):
                if p.side is side and not p.is_flat:
                    self.x.cache.apply_position(p)
                    return p
        except VenueError as exc:
            log.warning("positions(%s) failed: %s", symbol, exc)
        return None

    async def sync_position(self, symbol: str, side: Side) -> None:
        """The venue says there is no position: drop ours and tell everyone it is flat."""
        x = self.x
        pos = x.cache.position(symbol, side)
        read_ms = x.clock.now_ms()
        if pos is not None and await self.venue_position(symbol, side) is None:
            flat = Position(symbol, side, Decimal(0), pos.contract_size, pos.entry_price, pos.leverage, tag=pos.tag,
                            position_id=pos.position_id)  # no updated_ms: made up (the tracker stamps it)
            x.report(PositionChanged(read_ms, flat, reason="venue reports flat"))


def _working_at_venue(order: Order) -> bool:
    """Acknowledged by the exchange (it has its id) and not over: never to be sent again under its id."""
    return order.venue_order_id is not None and not order.state.is_terminal


def _current_cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0
