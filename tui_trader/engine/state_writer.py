"""Engine layer: writes the latest state per key to a `KeyValueStore`, off the hot path.

The risk guard (kill switch) and the strategy runner (machines) change state synchronously, inside
bus handlers; they `put` the new value here and a `run()` loop writes it. Only the newest value
of a key is kept: a burst of changes costs one write. A failed write (or a cancel mid-write)
leaves the value queued, so `flush()` at shutdown or the next wake-up retries it; a newer value
that arrived meanwhile is never overwritten by the older one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tui_trader.engine.ports import KeyValueStore


class StateWriter:
    def __init__(self, store: KeyValueStore | None) -> None:
        self.store = store
        self._pending: dict[str, Any] = {}
        self._wake: asyncio.Event | None = None  # created in the loop that runs it

    def put(self, key: str, value: Any) -> None:
        """Queue `value` as the state of `key` (replacing any value not yet written)."""
        self._pending[key] = value
        if self._wake is not None:
            self._wake.set()

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    async def run(self) -> None:
        """Write queued values as they come, until cancelled (left-overs of a restart first)."""
        if self._wake is None:
            self._wake = asyncio.Event()
        while True:
            if not self._pending:
                await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write each key queued now once, its newest value; on error or cancel it stays queued.

        One pass, not "until nothing is pending": at shutdown a feed still producing could keep a
        key changing faster than it is written, and the flush would never end (then be cut by the
        stop bound with the last state unwritten). A value queued during the pass is left for the
        next one."""
        if self.store is None:
            return
        for key in list(self._pending):
            if key not in self._pending:
                continue
            value = self._pending[key]
            await self.store.put_state(key, value)
            if self._pending.get(key) is value:  # a newer value may have arrived meanwhile
                del self._pending[key]
