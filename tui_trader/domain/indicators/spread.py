"""Domain layer: `spread_pct` of the freshest top of book (strategy.md §2.7).

(ask - bid) / mid x 100. Undefined when the book is older than `max_age_s`, a side is missing or
not positive, or the book is crossed or locked (ask <= bid): never an invented number.
"""

from __future__ import annotations

import math


class Spread:
    def __init__(self, max_age_s: float = 5.0) -> None:
        self.max_age_ms = round(max_age_s * 1000)
        self._book: tuple[int, float, float] | None = None
        self.longest_s = 0.0

    def on_book(self, ts_ms: int, bid: float, ask: float) -> None:
        self._book = (ts_ms, bid, ask)

    def value(self, now_ms: int) -> float | None:
        if self._book is None:
            return None
        ts, bid, ask = self._book
        if now_ms - ts > self.max_age_ms or not (math.isfinite(bid) and math.isfinite(ask)):
            return None
        if bid <= 0 or ask <= bid:
            return None
        return (ask - bid) / ((ask + bid) / 2) * 100.0
