"""Engine layer: the store as execution sees it - a failing disk never blocks a close or hides a report.

Every write goes to the real store; when one raises (disk full, database locked), the row is kept in
an in-memory journal, in order, a CRITICAL `ErrorRaised` says so (once per outage), and the caller
goes on: the close is sent, the report is published. The next write that succeeds first replays the
journal, so the store catches up with everything that happened while it was failing. Fills keep
their once-only rule in memory while they wait (`fill_id`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from tui_trader.domain.events import ErrorRaised
from tui_trader.domain.models import Fill, Order
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock
from tui_trader.engine.ports import OrderStore

log = logging.getLogger(__name__)


class JournaledStore:
    """Wraps an `OrderStore` (and its optional `save_position`, `load_*`, `last_open_positions`)."""

    def __init__(self, store: OrderStore, bus: EventBus, clock: Clock) -> None:
        self.inner, self.bus, self.clock = store, bus, clock
        self.pending: deque[tuple[str, Callable[[], Awaitable[Any]]]] = deque()
        self._journal_fills: set[str] = set()
        self.failing = False
        self.failures = 0

    def __getattr__(self, name: str) -> Any:  # reads (load_orders, last_open_positions, ...) go straight through
        return getattr(self.inner, name)

    async def save_order(self, order: Order, session_id: str = "") -> bool:
        """True when the row is on disk; False when it is journalled (the store is failing)."""
        return await self._write(f"order {order.client_id}", lambda: self.inner.save_order(order, session_id))

    async def save_position(self, position: Any, session_id: str = "", reason: str = "") -> None:
        if getattr(self.inner, "save_position", None) is not None:
            await self._write(f"position {position.symbol}",
                              lambda: self.inner.save_position(position, session_id, reason))  # type: ignore[attr-defined]

    async def save_fill(self, fill: Fill, session_id: str = "") -> bool:
        if fill.fill_id in self._journal_fills:
            return False  # already journalled: counted once
        result: list[bool] = []

        async def write() -> None:
            result.append(await self.inner.save_fill(fill, session_id))

        if await self._write(f"fill {fill.fill_id}", write):
            return result[0]
        self._journal_fills.add(fill.fill_id)
        return True

    async def _write(self, what: str, op: Callable[[], Awaitable[Any]]) -> bool:
        """True when `op` reached the store; False when it was journalled instead."""
        if self.pending and not await self._flush():
            self.pending.append((what, op))
            return False
        try:
            await op()
            return True
        except Exception as exc:  # noqa: BLE001 - whatever the disk says, the trade goes on
            self._failed(what, exc)
            self.pending.append((what, op))
            return False

    async def _flush(self) -> bool:
        while self.pending:
            what, op = self.pending[0]
            try:
                await op()
            except Exception as exc:  # noqa: BLE001
                self._failed(what, exc)
                return False
            self.pending.popleft()
        self._journal_fills.clear()
        if self.failing:
            self.failing = False
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "store", "store writable again: journal flushed",
                                         level="WARNING"))
        return True

    def _failed(self, what: str, exc: Exception) -> None:
        self.failures += 1
        log.error("store write of %s failed: %r (kept in memory)", what, exc)
        if not self.failing:
            self.failing = True
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "store", f"STORE WRITE FAILED ({exc}): orders and"
                                         " fills are kept in memory until it recovers; trading and closes go on",
                                         level="CRITICAL"))
