"""Engine layer: the typed event bus. The tick path publishes; nothing a subscriber does can stall it.

Two kinds of subscriber:

* Inline handlers (`subscribe`) run synchronously inside `publish`, in subscription order. They are
  the core's own components (strategy, watchdog, execution): fast, deterministic, no `await`, so a
  backtest replays identically. Events published while dispatching are queued and delivered after
  the current one (breadth-first, no recursion). A handler that raises is reported as an
  `ErrorRaised` event and the others still run.
* Queued subscribers (`subscribe_queue`) are the store, the headless writer and the UI. Each has a
  bounded queue with a declared policy: `EVERY` keeps every event and, when full, drops the oldest
  and reports how many (an `EventsDropped` event comes out first); `LATEST` keeps only the newest
  event per `Event.key` (a burst of 5 000 ticks on one symbol is one entry), keyless events in a
  bounded FIFO beside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from enum import Enum
from typing import Callable, Iterable

from tui_trader.domain.events import ErrorRaised, Event, EventsDropped

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]


class Policy(Enum):
    EVERY = "every"
    LATEST = "latest"


class Subscription:
    """A bounded, policy-driven queue of events for one consumer. Iterate it with `async for`."""

    def __init__(self, name: str, policy: Policy, maxsize: int, types: tuple[type[Event], ...] | None) -> None:
        self.name = name
        self.policy = policy
        self.maxsize = maxsize
        self.types = types
        self.dropped_total = 0
        self._dropped_pending = 0
        self._fifo: deque[Event] = deque()
        self._latest: OrderedDict[tuple, Event] = OrderedDict()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._fifo) + len(self._latest)

    def offer(self, event: Event) -> None:
        """Called by the bus; never blocks."""
        if self._closed:
            return
        if self.policy is Policy.LATEST and (key := event.key) is not None:
            self._latest[key] = event
            self._latest.move_to_end(key)
            if len(self._latest) > self.maxsize:
                self._latest.popitem(last=False)
                self._count_drop()
        else:
            if len(self._fifo) >= self.maxsize:
                self._fifo.popleft()
                self._count_drop()
            self._fifo.append(event)
        self._wake()

    def _count_drop(self) -> None:
        self.dropped_total += 1
        self._dropped_pending += 1

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def drain(self) -> list[Event]:
        """Everything pending, oldest first (the UI calls this from its refresh timer)."""
        out: list[Event] = []
        if self._dropped_pending:
            ts = (self._fifo[0].ts_ms if self._fifo else 0)
            out.append(EventsDropped(ts, subscriber=self.name, count=self._dropped_pending))
            self._dropped_pending = 0
        out.extend(self._fifo)
        self._fifo.clear()
        if self._latest:
            out.extend(self._latest.values())
            self._latest.clear()
        return out

    async def get_batch(self) -> list[Event]:
        """Wait until something is pending, then return all of it. [] once closed and empty."""
        while not len(self) and not self._dropped_pending:
            if self._closed:
                return []
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.drain()

    def close(self) -> None:
        """No more events will be offered; a waiting consumer gets what is left, then []."""
        self._closed = True
        self._wake()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> list[Event]:
        batch = await self.get_batch()
        if not batch:
            raise StopAsyncIteration
        return batch


class EventBus:
    """Publish/subscribe by event class (subclasses match their parents' subscriptions)."""

    def __init__(self) -> None:
        self._handlers: list[tuple[tuple[type[Event], ...] | None, Handler, str]] = []
        self._subs: list[Subscription] = []
        self._route_cache: dict[type[Event], tuple[list[Handler], list[Subscription]]] = {}
        self._pending: deque[Event] = deque()
        self._dispatching = False
        self.published = 0
        self.turn_wanted = False  # a close was started while a feed dispatches: see want_turn

    def want_turn(self) -> None:
        """Something that closes risk was just started as a task (execution's close): a feed handing
        over buffered messages lets the loop run it before the next one (`give_turn`), so the close
        is sent after this message, not after the whole burst."""
        self.turn_wanted = True

    async def give_turn(self) -> None:
        """Feeds call this between messages: one loop turn if a close is waiting for one, else nothing."""
        if self.turn_wanted:
            self.turn_wanted = False
            await asyncio.sleep(0)

    def subscribe(self, handler: Handler, types: Iterable[type[Event]] | None = None, name: str = "") -> Callable[[], None]:
        """Inline handler for `types` (None = all). Returns an unsubscribe function."""
        entry = (tuple(types) if types is not None else None, handler, name or getattr(handler, "__qualname__", "handler"))
        self._handlers.append(entry)
        self._route_cache.clear()

        def unsubscribe() -> None:
            if entry in self._handlers:
                self._handlers.remove(entry)
                self._route_cache.clear()

        return unsubscribe

    def subscribe_queue(
        self,
        name: str,
        policy: Policy = Policy.EVERY,
        maxsize: int = 10_000,
        types: Iterable[type[Event]] | None = None,
    ) -> Subscription:
        sub = Subscription(name, policy, maxsize, tuple(types) if types is not None else None)
        self._subs.append(sub)
        self._route_cache.clear()
        return sub

    def unsubscribe_queue(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._route_cache.clear()
        sub.close()

    def close(self) -> None:
        """Close every queued subscription (consumers finish what is pending, then stop)."""
        for sub in self._subs:
            sub.close()

    def _routes(self, cls: type[Event]) -> tuple[list[Handler], list[Subscription]]:
        routes = self._route_cache.get(cls)
        if routes is None:
            handlers = [h for types, h, _ in self._handlers if types is None or issubclass(cls, types)]
            subs = [s for s in self._subs if s.types is None or issubclass(cls, s.types)]
            routes = self._route_cache[cls] = (handlers, subs)
        return routes

    def publish(self, event: Event) -> None:
        """Deliver `event` to every matching subscriber. Never blocks, never raises."""
        self._pending.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending:
                ev = self._pending.popleft()
                self.published += 1
                handlers, subs = self._routes(type(ev))
                for sub in subs:
                    sub.offer(ev)
                for handler in handlers:
                    try:
                        handler(ev)
                    except Exception as exc:  # task-boundary rule: report, keep dispatching
                        log.exception("event handler %r failed on %s", handler, ev.type)
                        if not isinstance(ev, ErrorRaised):
                            self._pending.append(
                                ErrorRaised(ev.ts_ms, source=getattr(handler, "__qualname__", "handler"), message=f"{type(exc).__name__}: {exc}")
                            )
        finally:
            self._dispatching = False
