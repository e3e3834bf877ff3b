"""Venues layer: an asyncio-correct circuit breaker on top of pybreaker, timed by our `Clock`.

pybreaker's `call_async` needs Tornado, so calls go through `with breaker.calling(): await ...`
(pybreaker counts an exception raised inside the block). Its own open -> half-open check reads the
wall clock; we decide that transition ourselves from the injected clock and move the breaker with
its public `half_open()`, so tests drive closed -> open -> half-open -> closed without waiting.
Only `Retryable` outcomes (and `AmbiguousOrderState`) count as failures: answers are not outages.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, TypeVar

import pybreaker

from tui_trader.domain.config import BreakerConfig
from tui_trader.domain.errors import AmbiguousOrderState, Retryable
from tui_trader.engine.clock import Clock
from tui_trader.venues.mexc.errors import BreakerOpen

log = logging.getLogger(__name__)
T = TypeVar("T")


def _is_answer(exc: BaseException) -> bool:
    """pybreaker `exclude` predicate: True = not a system failure (does not count)."""
    return not isinstance(exc, (Retryable, AmbiguousOrderState))


class _StateListener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: "EntryBreaker") -> None:
        self.owner = owner

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state, new_state) -> None:  # type: ignore[no-untyped-def]
        self.owner._on_state(getattr(old_state, "name", "?"), new_state.name)


class EntryBreaker:
    """One breaker per venue for entries and ordinary private calls (closes bypass it)."""

    def __init__(self, config: BreakerConfig, clock: Clock, on_change: Callable[[str, str], None] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.on_change = on_change
        self.opened_at_s: float | None = None
        self.transitions: list[tuple[str, str]] = []
        self._cb = pybreaker.CircuitBreaker(
            fail_max=config.fail_max,
            reset_timeout=config.reset_timeout_s,
            exclude=[_is_answer],
            listeners=[_StateListener(self)],
            throw_new_error_on_trip=False,  # the caller sees the real error that tripped it
            name="mexc",
        )

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half-open'."""
        return self._cb.current_state

    @property
    def fail_counter(self) -> int:
        return self._cb.fail_counter

    def _on_state(self, old: str, new: str) -> None:
        if new == pybreaker.STATE_OPEN:
            self.opened_at_s = self.clock.time()
        self.transitions.append((old, new))
        log.warning("MEXC circuit breaker %s -> %s", old, new)
        if self.on_change is not None:
            self.on_change(old, new)

    def remaining_s(self) -> float:
        if self.state != pybreaker.STATE_OPEN or self.opened_at_s is None:
            return 0.0
        return max(0.0, self.opened_at_s + self.config.reset_timeout_s - self.clock.time())

    async def call(self, op: Callable[[], Awaitable[T]], what: str = "call") -> T:
        """Run `op` under the breaker. Raises `BreakerOpen` (nothing sent) while it is open."""
        if self.state == pybreaker.STATE_OPEN:
            left = self.remaining_s()
            if left > 0:
                raise BreakerOpen(f"MEXC circuit breaker open: {what} not sent ({left:.1f} s left)", retry_after_s=left)
            self._cb.half_open()  # our clock says the reset timeout has passed: allow one trial
        try:
            with self._cb.calling():
                return await op()
        except pybreaker.CircuitBreakerError as exc:  # raced into an open breaker
            raise BreakerOpen(f"MEXC circuit breaker open: {what} not sent", retry_after_s=self.remaining_s()) from exc
