"""Domain layer: `pump_magnitude_pct` - % change of a current TWPA against a baseline TWPA (§2.3).

pump = (TWPA(current) - TWPA(baseline)) / TWPA(baseline) x 100, defaults current `[10, 0]`,
baseline `[60, 30]`. Undefined when either TWPA is, or when the baseline is not positive.
"""

from __future__ import annotations

import math

from tui_trader.domain.indicators.series import EventLog
from tui_trader.domain.indicators.twpa import BAND_MARGIN, TwpaWindow, Window


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


def pct_trade_band(current: TwpaWindow, baseline: TwpaWindow, now_ms: int, horizon_ms: int, op: str,
                   change_pct: float) -> tuple[float, float]:
    """Prices later trades may have while `pct_change(current, baseline) op change_pct` stays
    impossible (it is now, by `pct_change_bounds`). Jointly safe: any number of such trades keeps
    it impossible. For `>=`: max(current) < k x min(baseline) with k = 1 + change/100; a trade
    raises the current window's max and, where it can reach the baseline windows too, lowers their
    min - the headroom r = k min(base) / max(cur) is then split between both sides (r^0.45 each).
    `<=` is the mirror image. Empty (every trade recomputes) when the windows are undefined."""
    empty = (math.inf, -math.inf)
    cur, base = current.bounds(now_ms, horizon_ms), baseline.bounds(now_ms, horizon_ms)
    k = 1.0 + change_pct / 100.0
    if cur is None or base is None or base[0] <= 0 or k <= 0:
        return empty
    open_cur, open_base = current.open_to_trades(now_ms, horizon_ms), baseline.open_to_trades(now_ms, horizon_ms)
    shrink = 1.0 - BAND_MARGIN
    if op in (">", ">="):
        r = k * base[0] / cur[1] * shrink
        if r <= 1.0:
            return empty
        if not open_base:
            return (-math.inf, k * base[0] * shrink) if open_cur else (-math.inf, math.inf)
        return (base[0] / r**0.45, cur[1] * r**0.45)
    r = cur[0] / (k * base[1]) * shrink
    if r <= 1.0:
        return empty
    if not open_base:
        return (k * base[1] / shrink, math.inf) if open_cur else (-math.inf, math.inf)
    return (base[1] / r**0.45, cur[0] * r**0.45)


class PumpMagnitude:
    def __init__(self, prices: EventLog, current: Window = (10, 0), baseline: Window = (60, 30), min_coverage: float = 0.5) -> None:
        self.current = TwpaWindow(prices, current, min_coverage)
        self.baseline = TwpaWindow(prices, baseline, min_coverage)
        self.longest_s = max(current[0], baseline[0])

    def value(self, now_ms: int) -> float | None:
        return pct_change(self.current.value(now_ms), self.baseline.value(now_ms))

    def bounds(self, now_ms: int, horizon_ms: int) -> tuple[float, float] | None:
        return pct_change_bounds(self.current.bounds(now_ms, horizon_ms), self.baseline.bounds(now_ms, horizon_ms))

    def trade_band(self, now_ms: int, horizon_ms: int, op: str, threshold: float) -> tuple[float, float]:
        return pct_trade_band(self.current, self.baseline, now_ms, horizon_ms, op, threshold)
