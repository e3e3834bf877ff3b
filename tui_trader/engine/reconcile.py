"""Engine layer: reconciliation of a live venue with what the console believes - at start and while running.

At start (before the strategy runner restores its machines): our orders are restored from the store
and every one still in flight is looked up by client id (externalOid); the exchange's positions come
into the cache with their owner (unknown ones are adopted as external: watched, closable, never
added to); positions the store last saw open that the exchange no longer has are closed in the store
with the reason. Every difference is published (`ErrorRaised`, source "reconcile", WARNING).
While running: the orders in flight are looked up every `order_poll_s` (a private push may be lost,
late, or never sent), so each outcome reaches its strategy whatever path reported it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from tui_trader.domain.errors import DataError, VenueError
from tui_trader.domain.events import (
    AccountUpdated,
    ErrorRaised,
    OrderUpdated,
    PositionChanged,
    PositionLiquidated,
)
from tui_trader.domain.models import Fill, Order, OrderState, Side
from tui_trader.engine.order_tracker import EXTERNAL_ID_PREFIX, EXTERNAL_TAG

if TYPE_CHECKING:
    from tui_trader.engine.execution import Execution

log = logging.getLogger(__name__)


class Reconciler:
    """Works through its execution's public surface: cache, venue, store, tracker, report, record."""

    def __init__(self, execution: Execution) -> None:
        self.x = execution
        self.restored: list[str] = []  # what start-up reconciliation found (also published as events)
        self._refreshing: set[tuple[str, Side]] = set()

    async def start(self, *, reconcile: bool = True) -> None:
        """Restore our orders from the store, then reconcile those left open with the venue - before any
        strategy step (the runner starts after execution), so a fill that happened while the console was
        down reaches its machine as FILLED and no second entry is sent. `reconcile=False` (paper): only
        the account, so the day's P&L counts from the starting balance."""
        if not reconcile:
            await self.read_account()
            await self.x.drain_reports()
            return
        loader = getattr(self.x.store, "load_orders", None)
        for order in await loader(self.x.session_id) if loader is not None else []:
            self.x.cache.apply_order(order)
        await self._spend_closed_entries()
        await self.reconcile_orders(startup=True)
        await self.x.drain_reports()
        await self._reconcile_positions()
        await self.read_account()
        await self.x.drain_reports()

    async def read_account(self) -> None:
        """The account at start: the risk guard counts the day from it and marks the adopted positions to
        market from the first tick; the header shows its equity before the first fill."""
        try:
            a = await self.x.venue.account()
        except (VenueError, DataError) as exc:  # a reply it cannot read must not stop the console starting
            self.x.bus.publish(ErrorRaised(self.x.clock.now_ms(), "reconcile", f"account unreadable at start: {exc}"))
            return
        self.x.report(AccountUpdated(self.x.clock.now_ms(), a.equity, a.available, a.cash_balance, a.unrealized_pnl))

    async def _spend_closed_entries(self) -> None:
        """Our finished entries on a side the store last saw flat own nothing: a position found there now
        was opened by someone else (or by an entry still in flight, which keeps its claim)."""
        last_open = getattr(self.x.store, "last_open_positions", None)
        held = {(p.symbol, p.side) for p in (await last_open(self.x.session_id) if last_open is not None else [])}
        sides = {(o.symbol, o.side.position_side) for o in self.x.cache.orders.values() if not o.side.is_close}
        now = self.x.clock.now_ms()
        for symbol, side in sides - held:
            self.x.tracker.spend_entries(symbol, side, now)

    async def _reconcile_positions(self) -> None:
        """Exchange positions into the cache with their owner (unknown ones adopted as external: watched,
        closable, never added to); positions the store last saw open that the exchange no longer has
        are closed in the store with the reason. Every difference is an event."""
        try:
            positions = await self.x.venue.positions()
        except (VenueError, DataError) as exc:
            self.x.bus.publish(ErrorRaised(self.x.clock.now_ms(), "reconcile", f"positions unreadable at start: {exc}"))
            return
        now = self.x.clock.now_ms()
        there = {(p.symbol, p.side) for p in positions}
        for p in positions:
            owner = self.x.tracker.attribute_position(p)
            if owner.tag == EXTERNAL_TAG:
                self._restored(True, f"{p.symbol} {p.side.value} {p.contracts} contracts: not ours,"
                                     " adopted as external")
            self.x.report(PositionChanged(now, owner, reason="reconcile"))
        last_open = getattr(self.x.store, "last_open_positions", None)
        closing_orders = getattr(self.x.venue, "closing_orders", None)  # MEXC: what closed it while we were down
        for p in await last_open(self.x.session_id) if last_open is not None else []:
            if (p.symbol, p.side) not in there:
                self._restored(True, f"{p.symbol} {p.side.value}: gone at the exchange, closed in the store")
                for closed_by in await closing_orders(p) if closing_orders is not None else []:
                    self.x.report(OrderUpdated(now, closed_by))
                self.x.report(PositionChanged(now, replace(p, contracts=Decimal(0), updated_ms=0),
                                            reason="reconcile: gone at the exchange"))

    async def poll_forever(self) -> None:
        while True:
            await self.x.clock.sleep(self.x.order_poll_s)
            try:
                await self.reconcile_orders()
            except (VenueError, DataError) as exc:  # the next poll looks again
                log.warning("order reconciliation failed: %s", exc)

    async def reconcile_orders(self, *, startup: bool = False) -> int:
        """Look up every order of ours still in flight by client id and report what the venue says.

        Found: the exchange's state (fills derived from its cumulative volume). Not found: a create
        whose request can no longer be processed (older than `unknown_after_s`) never reached the
        exchange and is rejected in the store; a younger one stays in flight. A filled order also
        refreshes its position (the private push that would say so may be lost). Returns the number
        of orders whose state changed. Orders whose create is still being sent are left to it."""
        now = self.x.clock.now_ms()
        changed = 0
        for order in [o for o in self.x.cache.orders.values() if not o.state.is_terminal]:
            if order.client_id.startswith(EXTERNAL_ID_PREFIX):
                continue  # no externalOid to look up (our own close of an external position has one)
            if self.x.is_sending(order.client_id):
                continue  # its create is with the venue's client, which proves the outcome before a re-send
            if not startup and now - order.updated_ms < 1000 * min(1.0, self.x.order_poll_s):
                continue  # just sent: its answer is probably on the way
            try:
                closing = order.reduce_only or order.side.is_close  # its booking waits for no entry breaker
                found = await self.x.venue.get_order(order.symbol, order.client_id, close_lane=closing)
            except (VenueError, DataError) as exc:  # a reply it cannot read proves nothing: looked up again later
                log.warning("lookup of %s %s failed: %s", order.client_id, order.symbol, exc)
                continue
            if found is None:
                if now - max(order.created_ms, order.updated_ms) < 1000 * self.x.unknown_after_s:
                    continue
                why = "not at the exchange (looked up after its recv window)"
                await self.x.record(order.with_state(OrderState.REJECTED, now, reason=f"{order.reason}: {why}"))
                self._restored(startup, f"{order.client_id} {order.symbol}: {why}")
                changed += 1
                continue
            merged, _ = self.x.tracker.merge_order(found, now)
            if merged.state is order.state and merged.filled_contracts == order.filled_contracts:
                continue
            changed += 1
            self._restored(startup, f"{order.client_id} {order.symbol}: {order.state.value} -> {merged.state.value}"
                                    f" ({merged.filled_contracts} filled)")
            self.x.report(OrderUpdated(now, found))  # a fill in it also refreshes its position (execution)
        return changed

    def _restored(self, startup: bool, what: str) -> None:
        if startup:
            self.restored.append(what)
            self.x.bus.publish(ErrorRaised(self.x.clock.now_ms(), "reconcile", what, level="WARNING"))

    def report_liquidation(self, order: Order, fill: Fill) -> None:
        """A fill of the exchange's own liquidation (category 2) or ADL (4) order: CRITICAL, with the loss,
        for the position's owner. The position's flat report follows; nobody sends a close for it."""
        if order.reason not in ("LIQUIDATION", "ADL"):
            return
        side = order.side.position_side
        held = self.x.cache.position(order.symbol, side)
        tag = held.tag if held is not None else order.tag
        lost = -fill.realized_pnl
        self.x.bus.publish(PositionLiquidated(fill.ts_ms, order.symbol, side.value, fill.price, lost, tag=tag))
        what = "liquidated" if order.reason == "LIQUIDATION" else "reduced by ADL"
        msg = (f"{order.symbol} {side.value} {what} by the exchange: {fill.qty_contracts} contracts at {fill.price},"
               f" {lost:.2f} USDT lost")
        self.x.bus.publish(ErrorRaised(self.x.clock.now_ms(), "exchange", msg, level="CRITICAL"))

    def refresh_soon(self, symbol: str, side: Side) -> None:
        """A fill derived from an order report: the position it changed is read from the venue (its own
        push may be lost) - once per symbol/side at a time, off the report worker."""
        if (symbol, side) in self._refreshing:
            return
        self._refreshing.add((symbol, side))

        async def refresh() -> None:
            try:
                await self.refresh_position(symbol, side)
            finally:
                self._refreshing.discard((symbol, side))
        self.x.spawn(refresh(), name=f"refresh:{symbol}:{side.value}")

    async def refresh_position(self, symbol: str, side: Side) -> None:
        """Report the venue's position on `symbol`/`side` now (flat if it has none and we had one)."""
        read_ms = self.x.clock.now_ms()
        try:
            held = [p for p in await self.x.venue.positions(symbol, close_lane=True)  # risk data: no breaker
                    if p.side is side and not p.is_flat]
        except (VenueError, DataError) as exc:
            log.warning("positions(%s) failed: %s", symbol, exc)
            return
        if held:
            self.x.report(PositionChanged(self.x.clock.now_ms(), held[0], reason="order filled"))
        elif (ours := self.x.cache.position(symbol, side)) is not None:
            flat = replace(ours, contracts=Decimal(0), updated_ms=0)  # made up: execution stamps it
            self.x.report(PositionChanged(read_ms, flat, reason="venue reports flat"))
