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
        """Write every queued value (newest per key); on error or cancel it stays queued."""
        while self._pending and self.store is not None:
            key, value = next(iter(self._pending.items()))
            await self.store.put_state(key, value)
            if self._pending.get(key) is value:  # a newer value may have arrived meanwhile
                del self._pending[key]
