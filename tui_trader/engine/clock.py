"""Engine layer: injectable clocks. Everything time-based asks a `Clock`, never `time.time()`.

`WallClock` is real time for paper and live. `SimClock` is moved by its owner: backtests set it to
each bar's time, tests call `advance()`; due timers fire in time order as it passes them, and
`sleep()` returns when the simulated time reaches its deadline, so no test waits for real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Callable, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch."""

    def now_ms(self) -> int:
        """Milliseconds since the epoch."""

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle: ...


class WallClock:
    """Real time; timers are the running loop's."""

    def time(self) -> float:
        return time.time()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay_s), callback)


class _SimTimer:
    __slots__ = ("due_ms", "callback", "cancelled")

    def __init__(self, due_ms: int, callback: Callable[[], None]) -> None:
        self.due_ms = due_ms
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimClock:
    """Simulated time. Starts at `start_ms`; only `advance`/`advance_to` move it (never backwards)."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now_ms = start_ms
        self._heap: list[tuple[int, int, _SimTimer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._now_ms / 1000.0

    def now_ms(self) -> int:
        return self._now_ms

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> _SimTimer:
        timer = _SimTimer(self._now_ms + max(0, round(delay_s * 1000)), callback)
        heapq.heappush(self._heap, (timer.due_ms, next(self._seq), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def advance(self, seconds: float) -> None:
        self.advance_to(self._now_ms + round(seconds * 1000))

    def advance_to(self, ts_ms: int) -> None:
        """Move to `ts_ms`, firing every timer due on the way at its own due time."""
        while self._heap and self._heap[0][0] <= ts_ms:
            due, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._now_ms = max(self._now_ms, due)
            timer.callback()
        self._now_ms = max(self._now_ms, ts_ms)

    @property
    def next_timer_ms(self) -> int | None:
        """Due time of the earliest live timer (lets a driver jump straight to it)."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None
