"""Engine layer: execution - intents in, persisted orders out to the venue, venue reports back to the bus.

Order path (nautilus-style): intent -> risk gate (entries only) -> client id persisted (durable) ->
venue. Two lanes:

* **Entry lane**: checked and sized one at a time (risk sees the previous one), each sent on its own task.
* **Close lane**: reduce-only market closes, started at once and in parallel; no risk gate, no
  cooldown, no entry back-off. One close sequence per position: a second request for a position
  already closing joins the running one. It re-sends until the venue reports the position flat:
  after a definitive failure or an ambiguous send its lookup did not find, with a new leg id (`-X` ->
  `-X2`...); no close is sent twice under one id (one still working has its rest cancelled first). "Position does not exist" means flat. Any other permanent
  refusal is raised loudly (`ErrorRaised` CRITICAL) and ends the sequence (`engine/closing.py`).

Venue reports (orders, fills, positions, account, funding, liquidations) go through one worker
that writes them to the store *before* publishing them, so nothing is acted on or shown that is
not on disk; a fill already stored (same `fill_id`) is not published again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from decimal import Decimal

from tui_trader.domain.errors import (
    AmbiguousOrderState,
    Permanent,
    Retryable,
    RiskRejected,
    VenueError,
)
from tui_trader.domain.events import (
    AccountUpdated,
    ErrorRaised,
    Event,
    OrderFilled,
    OrderUpdated,
    PositionChanged,
)
from tui_trader.domain.intents import (
    CancelOrders,
    ClosePosition,
    Intent,
    OpenPosition,
)
from tui_trader.domain.models import (
    Account,
    ClientOrderId,
    MarginMode,
    Order,
    OrderSide,
    OrderState,
    Side,
)
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import Clock
from tui_trader.engine.closing import Closer
from tui_trader.engine.exposure import (
    check_age,
    check_entry_liquidation,
    check_exposure,
)
from tui_trader.engine.journal import JournaledStore
from tui_trader.engine.order_tracker import OrderTracker
from tui_trader.engine.ports import OrderStore, RiskGate, VenueClient
from tui_trader.engine.reconcile import Reconciler
from tui_trader.engine.sizing import size_entry

log = logging.getLogger(__name__)


class Execution:
    name = "execution"

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        venue: VenueClient,
        store: OrderStore,
        cache: Cache,
        *,
        risk: RiskGate | None = None,
        session_id: str = "",
        close_retry_initial_s: float = 0.5,
        close_retry_max_s: float = 10.0,
        close_fill_timeout_s: float = 5.0,
    ) -> None:
        self.bus, self.clock, self.venue, self.cache = bus, clock, venue, cache
        self.store = store if isinstance(store, JournaledStore) else JournaledStore(store, bus, clock)
        self.risk = risk
        self.session_id = session_id
        self.close_retry_initial_s = close_retry_initial_s
        self.close_retry_max_s = close_retry_max_s
        self.close_fill_timeout_s = close_fill_timeout_s
        self._reports: deque[Event] = deque()
        self._report_wake = asyncio.Event()
        self._entries: deque[OpenPosition] = deque()
        self._entry_wake = asyncio.Event()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing: dict[tuple[str, Side], asyncio.Task[Order | None]] = {}
        self._close_cid: dict[tuple[str, Side], ClientOrderId] = {}  # the id a close sequence is waiting on
        self._tasks: set[asyncio.Task[object]] = set()
        self._waiters: dict[ClientOrderId, list[asyncio.Future[Order]]] = {}
        self._sending: set[ClientOrderId] = set()
        self.entries_blocked = False
        self.pending_entries = 0
        # venues that publish their own fills (paper) need none derived from order reports
        self.tracker = OrderTracker(cache, derive_fills=not getattr(venue, "reports_fills", True))
        # a live venue whose pushes may be lost: orders in flight are looked up by client id this often
        self.order_poll_s = float(getattr(venue, "order_poll_s", 0.0) or 0.0)
        self.unknown_after_s = float(getattr(venue, "unknown_after_s", 15.0) or 15.0)
        self.max_entry_age_s: float | None = getattr(venue, "max_entry_age_s", None)
        self.entry_liq_floor_pct = 0.0  # the watchdog's auto-close threshold + margin (set by the stack)
        self.reconciler = Reconciler(self)
        self.closer = Closer(self)

    # --- public API -----------------------------------------------------------------------

    def submit(self, intent: Intent) -> None:
        """Hand an intent to execution (never blocks; results arrive as events)."""
        if isinstance(intent, OpenPosition):
            self._entries.append(intent)
            self.pending_entries += 1
            self._mark_busy()
            self._entry_wake.set()
        elif isinstance(intent, ClosePosition):
            self.close(intent)
        elif isinstance(intent, CancelOrders):
            self.spawn(self.cancel_orders(intent.symbol, intent.tag, intent.reason))

    def report(self, event: Event) -> None:
        """Sink for venue reports: persisted, applied to the cache, then published, in order."""
        self._reports.append(event)
        self._mark_busy()
        self._report_wake.set()

    def close(self, intent: ClosePosition) -> asyncio.Task[Order | None]:
        """Start (or join) the close sequence of a position. Returns its task."""
        key = (intent.symbol, intent.side)
        running = self._closing.get(key)
        if running is not None and not running.done():
            return running
        self._mark_busy()  # until the sequence has sent its first order
        task = asyncio.create_task(self.closer.run(intent), name=f"close:{intent.symbol}:{intent.side.value}")
        self.bus.want_turn()  # the feed yields after this message: the close goes out before the rest of a burst
        self._closing[key] = task
        self._track(task)
        return task

    def is_closing(self, symbol: str, side: Side) -> bool:
        task = self._closing.get((symbol, side))
        return task is not None and not task.done()

    def has_work(self) -> bool:
        """True while reports, entries or close sends are pending (cheap: called per tick)."""
        return not self._idle.is_set()

    async def idle(self) -> None:
        """Return once every queued report, entry and cancel has been handled.

        Close sequences waiting for a fill or a retry timer do not count: they wait on data or time.
        """
        while True:
            await self._idle.wait()
            await asyncio.sleep(0)
            if self._idle.is_set():
                return

    # --- workers --------------------------------------------------------------------------

    async def start(self) -> None:
        """Live venues: reconcile with the exchange before any strategy step (see `engine/reconcile.py`).
        Paper: the account as it starts (nothing to reconcile; the day's P&L counts from this balance)."""
        await self.reconciler.start(reconcile=self.order_poll_s > 0)

    async def run(self) -> None:
        workers = [self._report_worker(), self._entry_worker()]
        if self.order_poll_s > 0:
            workers.append(self.reconciler.poll_forever())
        await asyncio.gather(*workers)

    async def drain_reports(self) -> None:  # every queued report now (reconciliation, before the strategy)
        await self._drain_reports()

    async def record(self, order: Order) -> Order:  # an order state decided here, not reported by the venue
        return await self._record(order)

    async def shutdown(self) -> None:
        """Refuse new entries, let queued work and running closes finish (bounded by the core)."""
        self.entries_blocked = True
        await self.idle()
        closes = [t for t in self._closing.values() if not t.done()]
        if closes:
            await asyncio.gather(*closes, return_exceptions=True)
        await self._drain_reports()

    async def _report_worker(self) -> None:
        while True:
            await self._report_wake.wait()
            self._report_wake.clear()
            await self._drain_reports()

    async def _drain_reports(self) -> None:
        """Process reports in order; close sequences waiting on an order wake only after the whole
        batch (the position change that follows a fill) has been applied."""
        terminal: list[Order] = []
        flat: list[tuple[str, Side]] = []
        while self._reports:
            event = self._reports.popleft()
            try:
                event = await self._persist_and_publish(event) or event
                if isinstance(event, OrderUpdated) and event.order.state.is_terminal:
                    terminal.append(event.order)
                elif isinstance(event, PositionChanged) and event.position.is_flat:
                    flat.append((event.position.symbol, event.position.side))
            finally:
                self._done_one()
        for order in terminal:
            self._resolve_order(order)
        for key in flat:  # a close waiting for its order: the position is gone, it can stop waiting
            cid = self._close_cid.get(key)
            for fut in self._waiters.pop(cid, []) if cid else []:
                if not fut.done():
                    fut.set_result(self.cache.orders.get(cid))

    async def _persist_and_publish(self, event: Event) -> Event | None:
        """Store, cache and publish one report; returns the event published (attributed), None if none.

        An order report is merged and applied to the cache in one step, before any await: a create's or a
        cancel's answer (booked on its sender's task) and a push of the same order, merged against the same
        cached state across the store's await, would each derive the same fill (counted twice) and the older,
        applied last, would take the order back. What is stored and published is the cache's order then."""
        if isinstance(event, OrderUpdated):
            order, fill = self.tracker.merge_order(event.order, self.clock.now_ms())
            changed = self.cache.apply_order(order)
            if fill is not None and await self.store.save_fill(fill, self.session_id):
                self.bus.publish(OrderFilled(event.ts_ms, fill))
                self.reconciler.refresh_soon(order.symbol, order.side.position_side)
                self.reconciler.report_liquidation(order, fill)
            if not changed:
                return None
            current = self.cache.orders.get(order.client_id, order)  # a later report may have moved it on
            if current is not event.order:
                event = OrderUpdated(event.ts_ms, current)
            await self.store.save_order(current, self.session_id)
        elif isinstance(event, OrderFilled):
            if not await self.store.save_fill(event.fill, self.session_id):
                return None  # already stored: a replayed fill is never counted twice
        elif isinstance(event, PositionChanged):
            now = self.clock.now_ms()
            offset = getattr(self.venue, "exchange_time_ms", self.clock.now_ms)() - now  # MEXC's clock - ours
            position = self.tracker.admit_position(event, now, offset)
            if position is None or not self.cache.apply_position(position):
                return None  # stale, or the same holding: no snapshot row, no event
            self.tracker.applied(position, now)
            if position is not event.position:
                event = PositionChanged(event.ts_ms, position, event.reason)
            await self.store.save_position(event.position, self.session_id, event.reason)
        elif isinstance(event, AccountUpdated):
            self.cache.account = Account("USDT", event.cash_balance, event.cash_balance - event.available, Decimal(0), event.unrealized_pnl)
        self.bus.publish(event)
        return event

    async def _entry_worker(self) -> None:
        while True:
            await self._entry_wake.wait()
            self._entry_wake.clear()
            while self._entries:
                intent = self._entries.popleft()
                try:
                    await self._open(intent)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # an entry must never kill the lane
                    log.exception("entry %s failed", intent.client_id)
                    self.bus.publish(ErrorRaised(self.clock.now_ms(), "execution", f"entry {intent.client_id} failed: {exc}"))
                finally:
                    self.pending_entries -= 1
                    self._done_one()

    # --- entries --------------------------------------------------------------------------

    async def _open(self, intent: OpenPosition) -> Order | None:
        """Checks and sizing in the lane (risk sees the previous entry in flight), then the send on its
        own task: an entry whose outcome takes a minute to prove must not hold up other symbols'."""
        now = self.clock.now_ms()
        base = Order(intent.client_id, intent.symbol, OrderSide.open_for(intent.side), intent.order_type, Decimal(0),
                     leverage=intent.leverage, margin_mode=MarginMode.ISOLATED, created_ms=now, updated_ms=now,
                     reason=intent.reason, tag=intent.tag)
        known = self.cache.orders.get(intent.client_id)
        if known is not None:  # the same intent again: idempotent
            return known
        try:
            if self.entries_blocked:
                raise RiskRejected("entries are blocked (emergency close / stopping)")
            account = await self.venue.account()
            if self.risk is not None:
                self.risk.check_open(intent, account, len(self.cache.positions), self.pending_entries - 1)
            instr = await self.venue.instrument(intent.symbol)
            order = size_entry(intent, base, account, instr, self.cache)
            limit = getattr(getattr(self.risk, "cfg", None), "max_position_pct", None)
            check_exposure(self.cache, intent, order, account, limit)
            check_entry_liquidation(intent, order, instr, self.cache, self.entry_liq_floor_pct)
            check_age(intent, self.clock.now_ms(), self.max_entry_age_s)
        except (RiskRejected, Permanent) as exc:
            return await self._record(base.with_state(OrderState.REJECTED, now, reason=f"{intent.reason}: {exc}"))
        if not await self.store.save_order(order, self.session_id):  # durable before the venue sees it
            why = "the store is not writable: no entry without its client id on disk"
            return await self._record(base.with_state(OrderState.REJECTED, now, reason=f"{intent.reason}: {why}"))
        self.cache.apply_order(order)
        self._sending.add(order.client_id)
        self.spawn(self._send(order), name=f"entry:{order.client_id}")
        return order

    async def _send(self, order: Order) -> Order:
        now = self.clock.now_ms()
        try:
            placed = await self.venue.place_order(order)
        except AmbiguousOrderState as exc:
            return await self._record(order.with_state(OrderState.UNKNOWN, now, reason=f"{order.reason}: {exc}"))
        except (Retryable, Permanent) as exc:
            return await self._record(order.with_state(OrderState.REJECTED, now, reason=f"{order.reason}: {exc}"))
        finally:
            self._sending.discard(order.client_id)
        return await self._venue_reply(placed)

    def is_sending(self, client_id: ClientOrderId) -> bool:  # its client proves the outcome; nobody else decides
        return client_id in self._sending

    async def _venue_reply(self, order: Order) -> Order:
        """The venue's answer to a create - possibly already filled (found by a lookup) - goes the way of
        every venue report: merged, fills derived and stored once, then published."""
        event = await self._persist_and_publish(OrderUpdated(self.clock.now_ms(), order))
        current = event.order if isinstance(event, OrderUpdated) else self.cache.orders.get(order.client_id, order)
        self._resolve_order(current)
        return current

    async def _record(self, order: Order) -> Order:
        """Persist and publish an order state decided here (not reported by the venue)."""
        if self.cache.apply_order(order):
            await self.store.save_order(order, self.session_id)
            self._resolve_order(order)
            self.bus.publish(OrderUpdated(self.clock.now_ms(), order))
        return order

    def _resolve_order(self, order: Order) -> None:
        if order.state.is_terminal:
            for fut in self._waiters.pop(order.client_id, []):
                if not fut.done():
                    fut.set_result(order)

    async def cancel_orders(self, symbol: str | None, tag: str | None = None, reason: str = "",
                            close_lane: bool = False) -> int:
        """Cancel open non-reduce-only orders (entries); returns how many were cancelled. `close_lane` (the
        kill switch): no breaker, and a failing listing is reported, never raised - closes go on regardless."""
        count = 0
        try:
            listed = await self.venue.open_orders(symbol, close_lane=close_lane)
        except VenueError as exc:
            if not close_lane:
                raise
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "execution", f"open orders unreadable ({exc}):"
                                         " entries not cancelled, closes go on", level="CRITICAL"))
            return 0
        for order in listed:
            if order.reduce_only or (tag is not None and order.tag != tag):
                continue
            try:
                # the venue's answer, like a create's: it may carry fills made before the cancel
                await self._venue_reply(await self.venue.cancel_order(order.symbol, order.client_id,
                                                                      close_lane=close_lane))
                count += 1
            except VenueError as exc:
                log.warning("cancel %s failed: %s", order.client_id, exc)
        return count

    # --- bookkeeping ----------------------------------------------------------------------

    def spawn(self, coro, name: str | None = None) -> None:
        """Run `coro` as a tracked task that counts as work for `idle()`."""
        self._mark_busy()
        task = asyncio.create_task(coro, name=name)
        self._track(task)

        def done(_: asyncio.Task) -> None:
            self._done_one()

        task.add_done_callback(done)

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("execution task %s failed: %r", task.get_name(), exc)
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "execution", f"{task.get_name()}: {exc}", level="CRITICAL"))

    def _mark_busy(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _done_one(self) -> None:
        self._busy = max(0, self._busy - 1)
        if self._busy == 0:
            self._idle.set()

    async def cancel_all_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

