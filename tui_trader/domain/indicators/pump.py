"""Domain layer: `pump_magnitude_pct` - % change of a current TWPA against a baseline TWPA (§2.3).

pump = (TWPA(current) - TWPA(baseline)) / TWPA(baseline) x 100, defaults current `[10, 0]`,
baseline `[60, 30]`. Undefined when either TWPA is, or when the baseline is not positive.
"""

from __future__ import annotations

from tui_trader.domain.indicators.series import EventLog
from tui_trader.domain.indicators.twpa import TwpaWindow, Window


def pct_change(now: float | None, base: float | None) -> float | None:
    """(now - base) / base x 100, None when undefined or the base is not positive."""
    if now is None or base is None or base <= 0:
        return None
    return (now - base) / base * 100.0


def pct_change_bounds(now: tuple[float, float] | None, base: tuple[float, float] | None) -> tuple[float, float] | None:
    """Range of `pct_change(x, y)` for x in `now`, y in `base` (None: undefined throughout)."""
    if now is None or base is None or base[1] <= 0:
        return None
    if base[0] <= 0:  # a base that can reach 0 makes the change unbounded
        return (-float("inf"), float("inf"))
    return ((now[0] - base[1]) / base[1] * 100.0, (now[1] - base[0]) / base[0] * 100.0)


class PumpMagnitude:
    def __init__(self, prices: EventLog, current: Window = (10, 0), baseline: Window = (60, 30), min_coverage: float = 0.5) -> None:
        self.current = TwpaWindow(prices, current, min_coverage)
        self.baseline = TwpaWindow(prices, baseline, min_coverage)
        self.longest_s = max(current[0], baseline[0])

    def value(self, now_ms: int) -> float | None:
        return pct_change(self.current.value(now_ms), self.baseline.value(now_ms))

    def bounds(self, now_ms: int, horizon_ms: int) -> tuple[float, float] | None:
        return pct_change_bounds(self.current.bounds(now_ms, horizon_ms), self.baseline.bounds(now_ms, horizon_ms))
