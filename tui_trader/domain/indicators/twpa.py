"""Domain layer: time-weighted price average (TWPA) over a sliding window (strategy.md §2.2).

The last-trade price is a step function; TWPA over `[now - a, now - b]` is its integral divided
by the covered time. The price in force at the window start is the last trade before it
(carry-in); with no earlier trade, coverage starts at the first trade. Below `min_coverage` of the
window length the value is undefined (None). Both window edges are cursors of a shared
`EventLog`, so an update costs O(1) amortised however many trades the window holds.
"""

from __future__ import annotations

import math

from tui_trader.domain.indicators.series import SCALE, EventLog

BAND_MARGIN = 1e-7  # relative: a trade band stays this far inside the exact limit (float rounding)

Window = tuple[float, float]


def window_ms(window: Window) -> tuple[int, int]:
    """`[a, b]` seconds ago -> (a_ms, b_ms)."""
    return round(window[0] * 1000), round(window[1] * 1000)


class TwpaWindow:
    """TWPA of one window over a price `EventLog` of kind STEP."""

    def __init__(self, prices: EventLog, window: Window, min_coverage: float = 0.5) -> None:
        self.prices = prices
        self.a_ms, self.b_ms = window_ms(window)
        self.min_coverage = min_coverage
        self._start = prices.edge(self.a_ms)
        self._end = prices.edge(self.b_ms)

    def value(self, now_ms: int) -> float | None:
        """TWPA at `now_ms` (the log must have been advanced to `now_ms`)."""
        first = self.prices.first_ms
        end_integral = self.prices.integral(self._end)
        if first is None or end_integral is None:
            return None
        s, e = now_ms - self.a_ms, now_ms - self.b_ms
        start_integral = self.prices.integral(self._start)
        if start_integral is None:  # no trade before s: coverage starts at the first trade
            start_integral, s = 0, first
        covered = e - s
        if covered <= 0 or covered < self.min_coverage * (self.a_ms - self.b_ms):
            return None
        return (end_integral - start_integral) / (covered * SCALE)  # exact sum, rounded once

    def bounds(self, now_ms: int, horizon_ms: int) -> tuple[float, float] | None:
        """Range the TWPA can take at any instant of `[now, now + horizon]` if no trade arrives
        meanwhile: an average of the prices in force over the windows' union. None: undefined."""
        return self.prices.span_range(now_ms - self.a_ms, now_ms + horizon_ms - self.b_ms)

    def open_to_trades(self, now_ms: int, horizon_ms: int) -> bool:
        """Can a trade still to come fall inside one of the windows of the horizon?"""
        return self.prices.reaches_future(now_ms + horizon_ms - self.b_ms)


class Twpa:
    """Standalone `twpa` indicator (default window `[300, 0]`)."""

    def __init__(self, prices: EventLog, window: Window = (300, 0), min_coverage: float = 0.5) -> None:
        self.window = TwpaWindow(prices, window, min_coverage)
        self.longest_s = window[0]

    def value(self, now_ms: int) -> float | None:
        return self.window.value(now_ms)

    def bounds(self, now_ms: int, horizon_ms: int) -> tuple[float, float] | None:
        return self.window.bounds(now_ms, horizon_ms)

    def trade_band(self, now_ms: int, horizon_ms: int, op: str, threshold: float) -> tuple[float, float]:
        """Prices later trades may have while `value op threshold` stays impossible (it is now):
        an average of prices all below (above) the threshold stays below (above) it."""
        if not self.window.open_to_trades(now_ms, horizon_ms):
            return (-math.inf, math.inf)
        margin = BAND_MARGIN * max(1.0, abs(threshold))
        return (-math.inf, threshold - margin) if op in (">", ">=") else (threshold + margin, math.inf)
