"""Engine layer: emergency close - the panic button. Flatten one position or all of them, until flat.

Sequence (progress published as `EmergencyCloseProgress`): block new entries, then - at the same
time - cancel open entry orders (close lane; a failing listing or cancel is reported and holds
nothing up) and start a reduce-only market close for every open position at once through the execution
close lane (which no risk gate, breaker, back-off or cooldown can hold; a close already running
for a position is joined), wait for all, re-read the venue's positions and repeat until it reports
none (`max_rounds`, `round_wait_s` apart, then `failed`).

Entries: a close-all puts the risk guard in REDUCING at once (entries refused with that reason),
then HALTED once flat, persisted, until the user resets it: a trader who pressed "close all" does
not want the strategy to re-enter a second later. Without a risk guard it sets
`execution.entries_blocked` and leaves it set. A close of one position blocks entries (the flag)
only while it runs.

Key handlers and signal handlers call `request_close_all()` / `request_close_one()`: they return
at once with the (shared) task; a second request while one runs joins it.
"""

from __future__ import annotations

import asyncio
import logging

from tui_trader.domain.errors import VenueError
from tui_trader.domain.events import EmergencyCloseProgress, ErrorRaised
from tui_trader.domain.intents import ClosePosition, make_client_id
from tui_trader.domain.models import Position, Side
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import Clock
from tui_trader.engine.execution import Execution
from tui_trader.engine.ports import VenueClient

log = logging.getLogger(__name__)

ALL = "all"


class EmergencyClose:
    def __init__(self, bus: EventBus, clock: Clock, execution: Execution, venue: VenueClient, cache: Cache, *,
                 risk=None, max_rounds: int = 10, round_wait_s: float = 1.0) -> None:
        self.bus, self.clock, self.execution, self.venue, self.cache = bus, clock, execution, venue, cache
        self.risk = risk  # RiskGuard | None: enter_reducing() / confirm_flat()
        self.max_rounds = max_rounds
        self.round_wait_s = round_wait_s
        self._running: dict[str, asyncio.Task[bool]] = {}
        self._seq = 0
        self._active = 0  # sequences running: entries are unblocked only when the last one ends
        self._was_blocked = False
        self._keep_blocked = False

    # --- commands -------------------------------------------------------------------------

    def request_close_all(self, reason: str = "MANUAL") -> asyncio.Task[bool]:
        """Start (or join) the close of every position; returns at once. Result: True = flat."""
        return self._start(ALL, None, reason)

    def request_close_one(self, symbol: str, side: Side, reason: str = "MANUAL") -> asyncio.Task[bool]:
        """Start (or join) the close of one position; returns at once. Result: True = flat."""
        return self._start(f"{symbol}:{side.value}", (symbol, side), reason)

    async def close_all(self, reason: str = "MANUAL") -> bool:
        return await asyncio.shield(self.request_close_all(reason))

    async def close_one(self, symbol: str, side: Side, reason: str = "MANUAL") -> bool:
        return await asyncio.shield(self.request_close_one(symbol, side, reason))

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._running.values())

    def _start(self, scope: str, target: tuple[str, Side] | None, reason: str) -> asyncio.Task[bool]:
        task = self._running.get(scope)
        if task is None or task.done():
            if target is None and self.risk is not None:  # at once: no entry slips in before the task runs
                self.risk.enter_reducing(f"emergency close ({reason})")
            task = asyncio.get_running_loop().create_task(self._run(scope, target, reason), name=f"emergency:{scope}")
            self._running[scope] = task
            task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[bool]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("emergency close %s failed: %r", task.get_name(), task.exception())
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "emergency", f"{task.get_name()}: {task.exception()}", level="CRITICAL"))

    # --- the sequence ---------------------------------------------------------------------

    async def _run(self, scope: str, target: tuple[str, Side] | None, reason: str) -> bool:
        symbol = target[0] if target else None
        self._progress(scope, "started", len(self._cached(target)), reason)
        guarded = target is None and self.risk is not None  # the risk guard refuses entries, with its reason
        if not guarded:
            self._block_entries(keep=target is None)
        cancels = asyncio.get_running_loop().create_task(self._cancel(scope, symbol, target, reason))
        try:
            try:  # the closes do not wait for the cancels: a failing listing or cancel must not hold them up
                flat, left, detail = await self._close_rounds(scope, target, reason)
            finally:
                await asyncio.gather(cancels, return_exceptions=True)  # then the result: `done` is the last word
            if flat:
                self._finish(scope, target, detail)
            else:
                self._progress(scope, "failed", left, detail)
                self.bus.publish(ErrorRaised(self.clock.now_ms(), "emergency", f"EMERGENCY CLOSE FAILED: {detail}"
                                             " - close by hand", level="CRITICAL"))
            return flat
        finally:
            if not guarded:
                self._unblock_entries()

    async def _cancel(self, scope: str, symbol: str | None, target: tuple[str, Side] | None, reason: str) -> None:
        try:
            cancelled = await self.execution.cancel_orders(symbol, reason=f"emergency {reason}", close_lane=True)
        except Exception as exc:  # noqa: BLE001 - whatever it was, reported; the closes run regardless
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "emergency", f"cancelling entries failed: {exc}",
                                         level="CRITICAL"))
            return
        self._progress(scope, "cancelled_orders", len(self._cached(target)), f"{cancelled} order(s) cancelled")

    def _finish(self, scope: str, target: tuple[str, Side] | None, detail: str) -> None:
        """Flat: HALTED first (after a close-all), then the result, so `done` is the last word."""
        if target is None and self.risk is not None:
            self.risk.confirm_flat()
        self._progress(scope, "done", 0, detail)

    def _block_entries(self, keep: bool) -> None:
        if self._active == 0:
            self._was_blocked = self.execution.entries_blocked
        self._active += 1
        self._keep_blocked |= keep
        self.execution.entries_blocked = True

    def _unblock_entries(self) -> None:
        self._active -= 1
        if self._active == 0 and not self._keep_blocked:
            self.execution.entries_blocked = self._was_blocked

    async def _close_rounds(self, scope: str, target: tuple[str, Side] | None, reason: str) -> tuple[bool, int, str]:
        """Rounds of closes until the venue reports flat: (flat, positions left, detail)."""
        errors: list[str] = []
        for round_no in range(1, self.max_rounds + 1):
            open_positions = await self._open_positions(target)
            if not open_positions:
                return True, 0, f"flat after {round_no - 1} round(s)"
            if round_no > 1:
                await self.clock.sleep(self.round_wait_s)
            self._seq += 1
            tasks = [self.execution.close(self._intent(p, reason)) for p in open_positions]
            self._progress(scope, "closing", len(open_positions), f"round {round_no}: {len(tasks)} reduce-only close(s) sent")
            results = await asyncio.gather(*tasks, return_exceptions=True)
            errors = [f"{p.symbol} {p.side.value}: {r!r}" for p, r in zip(open_positions, results) if isinstance(r, BaseException)]
            for err in errors:
                log.error("emergency close: %s", err)
        left = await self._open_positions(target)
        if not left:
            return True, 0, f"flat after {self.max_rounds} round(s)"
        detail = f"{len(left)} position(s) still open after {self.max_rounds} rounds" + (f"; {'; '.join(errors)}" if errors else "")
        return False, len(left), detail

    def _intent(self, p: Position, reason: str) -> ClosePosition:
        now = self.clock.now_ms()
        cid = make_client_id("EC", now, self._seq, p.symbol, p.side.value[0])
        return ClosePosition(now, p.tag, p.symbol, p.side, cid, reason)

    async def _open_positions(self, target: tuple[str, Side] | None) -> list[Position]:
        """The venue's positions (the truth); the cache's if the venue cannot answer."""
        try:
            positions = await self.venue.positions(target[0] if target else None, close_lane=True)
        except VenueError as exc:
            log.warning("emergency close: positions unavailable (%s), using the cache", exc)
            positions = self._cached(target)
        return [p for p in positions if not p.is_flat and (target is None or (p.symbol, p.side) == target)]

    def _cached(self, target: tuple[str, Side] | None) -> list[Position]:
        return [p for key, p in self.cache.positions.items() if target is None or key == target]

    def _progress(self, scope: str, stage: str, open_positions: int, detail: str) -> None:
        self.bus.publish(EmergencyCloseProgress(self.clock.now_ms(), scope, stage, open_positions, detail))
