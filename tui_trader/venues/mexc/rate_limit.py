"""Venues layer: MEXC's request budget, with closes first.

MEXC allows most endpoints 20 requests per 2 s each and `contract/detail` 1 per 5 s (mexc.md 1.3);
beyond that it answers 510 and the request is lost time. Each endpoint gets a token bucket on the
injected clock. Two rules keep a close from ever waiting behind entries:

* entries (and ordinary calls) leave `CLOSE_RESERVE` tokens of every bucket untouched, so a burst
  of entries cannot use up what a close needs;
* while a close waits for a token, no entry takes one: the next token is the close's.

The lane comes from `LANE_IS_CLOSE`, a context variable the client sets around each attempt (the
call's task and whatever it awaits see it), so the REST methods stay as they are. A request waits
for its token before it is signed: the signature's timestamp is never spent in the queue.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass

from tui_trader.engine.clock import Clock
from tui_trader.venues.mexc import constants as C

LANE_IS_CLOSE: contextvars.ContextVar[bool] = contextvars.ContextVar("mexc_close_lane", default=False)
CLOSE_RESERVE = 4  # tokens of each bucket only the close lane may take
_SYMBOL_TAIL = re.compile(r"/[A-Z0-9]+_[A-Z0-9]+$")  # fair_price/BTC_USDT and fair_price/ETH_USDT: one endpoint


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int  # per window
    window_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.window_s


DEFAULT_LIMIT = Limit(20, 2.0)
LIMITS = {C.DETAIL: Limit(1, 5.0)}


def endpoint_of(path: str) -> str:
    """The endpoint a path counts against: query and a trailing `/SYMBOL` dropped."""
    return _SYMBOL_TAIL.sub("", path.split("?", 1)[0])


class _Bucket:
    __slots__ = ("closes_waiting", "limit", "reserve", "stamp", "tokens")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit, self.tokens, self.stamp, self.closes_waiting = limit, float(limit.requests), now, 0
        self.reserve = min(CLOSE_RESERVE, limit.requests - 1)

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.limit.requests), self.tokens + (now - self.stamp) * self.limit.rate)
        self.stamp = now


class RequestBudget:
    """Per-endpoint token buckets shared by every REST call of one client."""

    def __init__(self, clock: Clock, *, scale: float = 1.0) -> None:
        """`scale` < 1 budgets below MEXC's published limits (other programs on the same key or IP)."""
        self.clock, self.scale = clock, scale
        self._buckets: dict[str, _Bucket] = {}
        self.waited_s = {"close": 0.0, "entry": 0.0}  # total time spent waiting, by lane (benches, tests)

    def _bucket(self, endpoint: str) -> _Bucket:
        bucket = self._buckets.get(endpoint)
        if bucket is None:
            limit = LIMITS.get(endpoint, DEFAULT_LIMIT)
            limit = Limit(max(1, int(limit.requests * self.scale)), limit.window_s)
            bucket = self._buckets[endpoint] = _Bucket(limit, self.clock.time())
        return bucket

    async def take(self, path: str, close: bool | None = None) -> None:
        """Wait for one token of `path`'s endpoint; `close` None = the current lane (`LANE_IS_CLOSE`)."""
        close = LANE_IS_CLOSE.get() if close is None else close
        bucket = self._bucket(endpoint_of(path))
        started = self.clock.time()
        if close:
            bucket.closes_waiting += 1
        try:
            while True:
                now = self.clock.time()
                bucket.refill(now)
                need = 1.0 if close else 1.0 + bucket.reserve
                if bucket.tokens >= need - 1e-9 and (close or bucket.closes_waiting == 0):  # float refill
                    bucket.tokens -= 1.0
                    break
                missing = need - bucket.tokens  # <= 0: an entry behind a waiting close waits one token's time
                await self.clock.sleep(max(missing if missing > 0 else 1.0, 0.01) / bucket.limit.rate)
        finally:
            if close:
                bucket.closes_waiting -= 1
        self.waited_s["close" if close else "entry"] += self.clock.time() - started
