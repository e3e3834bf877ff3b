"""Domain layer: `price_velocity` - % change between two TWPA windows per second (§2.4).

velocity = pct_change(TWPA(current), TWPA(baseline)) / dt, dt = distance between the window
centres in seconds. Defaults current `[10, 0]`, baseline `[20, 10]` (dt = 10 s): the project
gives velocity its own short windows so it measures the current speed, not pump / 40.
"""

from __future__ import annotations

from tui_trader.domain.indicators.pump import pct_change, pct_change_bounds, pct_trade_band
from tui_trader.domain.indicators.series import EventLog
from tui_trader.domain.indicators.twpa import TwpaWindow, Window


class PriceVelocity:
    def __init__(self, prices: EventLog, current: Window = (10, 0), baseline: Window = (20, 10), min_coverage: float = 0.5) -> None:
        self.current = TwpaWindow(prices, current, min_coverage)
        self.baseline = TwpaWindow(prices, baseline, min_coverage)
        self.dt_s = (baseline[0] + baseline[1]) / 2 - (current[0] + current[1]) / 2
        if self.dt_s <= 0:
            raise ValueError("baseline window must be centred before the current window")
        self.longest_s = max(current[0], baseline[0])

    def value(self, now_ms: int) -> float | None:
        change = pct_change(self.current.value(now_ms), self.baseline.value(now_ms))
        return None if change is None else change / self.dt_s

    def bounds(self, now_ms: int, horizon_ms: int) -> tuple[float, float] | None:
        change = pct_change_bounds(self.current.bounds(now_ms, horizon_ms), self.baseline.bounds(now_ms, horizon_ms))
        return None if change is None else (change[0] / self.dt_s, change[1] / self.dt_s)

    def trade_band(self, now_ms: int, horizon_ms: int, op: str, threshold: float) -> tuple[float, float]:
        return pct_trade_band(self.current, self.baseline, now_ms, horizon_ms, op, threshold * self.dt_s)
