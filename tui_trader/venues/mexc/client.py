"""Venues layer: the resilient MEXC client - tenacity retries inside a circuit breaker, two lanes.

* Entry lane (entries and ordinary private calls): `EntryBreaker` around a tenacity retry of
  `Retryable` errors only (attempts / initial / multiplier / cap / jitter from `RetryConfig`, at
  least `retry_after_s` after a rate limit), each attempt bounded by `call_timeout_s`.
* Close lane (reduce-only orders, emergency closes and the lookups they need): no breaker, fast
  retries capped at 1 s between attempts - a breaker opened by entries must never delay a close.
* Order create follows the idempotent recipe (mexc.md 5.4): one serialised body and externalOid;
  after a timeout, dropped connection, 5xx, 603 or non-JSON answer, wait, look the order up by
  externalOid and adopt it if found. An entry is re-sent only once a second lookup after the
  request's recv window says it does not exist (a held request may be processed late; the
  exchange does not deduplicate externalOid); at most twice; else `AmbiguousOrderState`.
Sleeps go through an injectable `sleep` so tests assert delays without waiting.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from typing import Any, Awaitable, Callable, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from tui_trader.domain.config import BreakerConfig, RetryConfig
from tui_trader.domain.errors import AmbiguousOrderState, Retryable
from tui_trader.engine.clock import Clock
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc import parse
from tui_trader.venues.mexc.breaker import EntryBreaker
from tui_trader.venues.mexc.rate_limit import LANE_IS_CLOSE
from tui_trader.venues.mexc.errors import BadResponse, ExchangeError, NetworkError, RateLimited, RepeatedRequest, RequestTimeout, ServerError
from tui_trader.venues.mexc.rest import MexcRest

log = logging.getLogger(__name__)
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# failures after which an order may or may not exist at the exchange (mexc.md 5.4 step 3)
AMBIGUOUS = (RequestTimeout, NetworkError, ServerError, BadResponse, RepeatedRequest)
CLOSE_LANE_ATTEMPTS = 3
CLOSE_LANE_MAX_WAIT_S = 1.0


class MexcClient:
    """REST calls with retry/breaker policy. Build with `MexcRest`, configs, the clock and optionally a sleep."""

    def __init__(
        self,
        rest: MexcRest,
        retry: RetryConfig,
        breaker: BreakerConfig,
        clock: Clock,
        *,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        on_breaker_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.rest = rest
        self.retry_config = retry
        self.breaker_config = breaker
        self.clock = clock
        self.sleep: Sleep = sleep or clock.sleep
        self.rng = rng or random.Random()
        self.breaker = EntryBreaker(breaker, clock, on_breaker_change)
        self.lookup_delay_s = C.ORDER_LOOKUP_DELAY_S

    # --- policy -----------------------------------------------------------------------------

    def _entry_wait(self, state: RetryCallState) -> float:
        cfg = self.retry_config
        base = min(cfg.initial_s * cfg.multiplier ** (state.attempt_number - 1), cfg.max_s)
        exc = state.outcome.exception() if state.outcome else None
        floor = getattr(exc, "retry_after_s", None) or 0.0
        return max(base, floor) + (self.rng.uniform(0, cfg.jitter_s) if cfg.jitter_s else 0.0)

    def _close_wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        base = 0.25 * 2 ** (state.attempt_number - 1)
        if isinstance(exc, RateLimited):
            base = max(base, exc.retry_after_s or 0.0)
        return min(base, CLOSE_LANE_MAX_WAIT_S)

    async def _timed(self, op: Callable[[], Awaitable[T]], what: str, close_lane: bool) -> T:
        """One attempt, bounded by `call_timeout_s`, run in a context that names its lane (the request
        budget serves closes first - rate_limit.py); the caller's context is left as it was."""
        context = contextvars.copy_context()
        context.run(LANE_IS_CLOSE.set, close_lane)
        attempt = asyncio.get_running_loop().create_task(_awaited(op), context=context)
        try:  # asyncio.timeout, not wait_for: 3.11's wait_for loses a cancellation that meets the answer
            async with asyncio.timeout(self.breaker_config.call_timeout_s):  # (a stop then waited for ever)
                return await attempt
        except TimeoutError as exc:
            raise RequestTimeout(f"{what}: call timeout {self.breaker_config.call_timeout_s:g} s") from exc
        finally:
            attempt.cancel()  # no-op once done; else the attempt must not outlive its caller

    async def _retrying(self, op: Callable[[], Awaitable[T]], what: str, close_lane: bool) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(CLOSE_LANE_ATTEMPTS if close_lane else self.retry_config.attempts),
            wait=self._close_wait if close_lane else self._entry_wait,
            retry=retry_if_exception_type(Retryable),
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda s: log.warning("%s failed (%s), retry %d", what, s.outcome.exception() if s.outcome else "?", s.attempt_number),
        )
        async for attempt in retrying:
            with attempt:
                return await self._timed(op, what, close_lane)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def call(self, op: Callable[[], Awaitable[T]], what: str, *, close_lane: bool = False, breaker: bool = True) -> T:
        """Run one idempotent REST operation under the lane's policy."""
        if close_lane or not breaker:
            return await self._retrying(op, what, close_lane)
        return await self.breaker.call(lambda: self._retrying(op, what, False), what)

    # --- order create (mexc.md 5.4) ---------------------------------------------------------

    async def create_order(self, symbol: str, external_oid: str, body_text: str, *, close_lane: bool = False) -> dict[str, Any] | str:
        """Send one order idempotently. Returns the order id (str) or the adopted order object (dict).

        Raises:
            AmbiguousOrderState: sent, and neither an answer nor the externalOid lookup says what happened.
            Permanent subclasses: the exchange answered no (validation, 1002, 2005, ...).
        """
        recipe = lambda: self._create_recipe(symbol, external_oid, body_text, close_lane)
        if close_lane:
            return await recipe()
        return await self.breaker.call(recipe, f"order {external_oid}")

    async def _create_recipe(self, symbol: str, external_oid: str, body_text: str, close_lane: bool) -> dict[str, Any] | str:
        last: Exception | None = None
        for send in range(1 + C.MAX_ORDER_RESENDS):
            sent_at = self.clock.time()
            try:
                data = await self._timed(lambda: self.rest.create_order(body_text), f"order {external_oid}", close_lane)
                return _order_id(data)
            except RateLimited as exc:  # a definite "not processed": wait, then the same body again
                last = exc
                await self.sleep(min(exc.retry_after_s or C.RATE_LIMIT_BACKOFF_S, CLOSE_LANE_MAX_WAIT_S if close_lane else 60.0))
                continue
            except AMBIGUOUS as exc:
                last = exc
                log.warning("order %s send %d ambiguous (%s): looking it up", external_oid, send + 1, exc)
            found = await self._resolve_ambiguous(symbol, external_oid, sent_at, close_lane)
            if found is not None:
                log.info("order %s found by externalOid after an ambiguous send: adopted", external_oid)
                return found
            if close_lane:  # not found once, but the exchange may still process it: the close goes again under
                break  # a new id (the close lane's next leg) - two orders under one externalOid merge into one
        raise AmbiguousOrderState(
            f"order {external_oid} on {symbol}: no definite answer after {1 + C.MAX_ORDER_RESENDS} sends ({last})", code=getattr(last, "code", None)
        )

    async def _resolve_ambiguous(self, symbol: str, external_oid: str, sent_at: float, close_lane: bool) -> dict[str, Any] | None:
        """After a send with no definite answer: the order if the exchange has it, None once it is proven absent.

        A request the exchange holds may still be processed after a lookup says "not found". An entry is
        proven absent only by a second lookup after the request's recv window (+ a margin for clock
        offset) has passed: the exchange refuses a request older than its window. A reduce-only close
        is not waited for after one lookup: a second close cannot add exposure (the exchange caps it at
        the position), while waiting 10 s next to a liquidation can cost the position - it goes again
        under a new id (the caller's next leg), never under this one.
        """
        await self.sleep(self.lookup_delay_s)
        found = await self._lookup(symbol, external_oid)
        if found is not None or close_lane:
            return found
        window = float(getattr(self.rest.config, "recv_window_s", 10)) + C.RECV_WINDOW_MARGIN_S
        wait = sent_at + window - self.clock.time()
        await self.sleep(max(wait, self.lookup_delay_s))
        return await self._lookup(symbol, external_oid)

    async def _lookup(self, symbol: str, external_oid: str) -> dict[str, Any] | None:
        """The order with this externalOid, None when the exchange says it does not exist.

        Raises AmbiguousOrderState when the lookup itself cannot get an answer: never re-send blind.
        """
        try:
            data = await self._retrying(lambda: self.rest.get_order_by_external(symbol, external_oid), f"lookup {external_oid}", True)
        except ExchangeError as exc:
            if exc.code in C.ORDER_NOT_FOUND_CODES:
                return None
            raise
        except Retryable as exc:
            raise AmbiguousOrderState(f"order {external_oid} on {symbol}: sent, and the lookup failed ({exc})", code=exc.code) from exc
        try:  # the one rule for "not there" (parse.looked_up); a reply it cannot read is no answer
            return parse.looked_up(data)
        except parse.FrameError as exc:
            raise AmbiguousOrderState(f"order {external_oid} on {symbol}: sent, and the lookup {exc}") from None


async def _awaited(op: Callable[[], Awaitable[T]]) -> T:
    return await op()


def _order_id(data: Any) -> str:
    """Order id from any of the create answers: a bare number/string or `{"orderId": ...}`."""
    if isinstance(data, dict):
        data = data.get("orderId", data.get("order_id"))
    if data is None or isinstance(data, bool):
        raise BadResponse("order create answered without an order id", code=None)
    return str(data)
