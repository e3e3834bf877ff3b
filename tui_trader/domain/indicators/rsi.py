"""Domain layer: Wilder RSI - the one recurrence, used on closed candles of one timeframe by the tick
strategies (`Rsi`, strategy.md §2.6) and on every bar by bar mode (`bars.Rsi` is `WilderRsi`).

Changes d = x[t] - x[t-1], gain = max(d, 0), loss = max(-d, 0). The average gain G and loss L are
seeded with the simple mean of the first n changes (their exact sum rounded once, as `math.fsum`,
then / n), then G <- (G (n - 1) + gain) / n, the same for L. RSI = 100 - 100 / (1 + G / L);
L = 0 and G > 0 -> 100; G = L = 0 -> 50 (a flat market is neutral, not overbought). Undefined until
n + 1 values. `Rsi` uses only candles whose interval equals its timeframe; the forming candle never
is (`include_partial` is not supported: it would make bar backtests and live disagree).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

TIMEFRAMES_S = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400}


def rsi_from_averages(gain: float, loss: float) -> float:
    if loss == 0:
        return 50.0 if gain == 0 else 100.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


class WilderRsi:
    """Wilder RSI(n) of the values given to `update` (module docstring); `value` is None until defined."""

    def __init__(self, n: int = 14) -> None:
        self.n = n
        self._last: float | None = None
        self._seed: list[tuple[float, float]] | None = []  # the first n (gain, loss); None once seeded
        self._gain: float | None = None
        self._loss = 0.0

    def update(self, x: float) -> None:
        prev, self._last = self._last, x
        if prev is None:
            return
        d = x - prev
        gain, loss = max(d, 0.0), max(-d, 0.0)
        n = self.n
        if self._seed is not None:
            self._seed.append((gain, loss))
            if len(self._seed) == n:
                self._gain = math.fsum(g for g, _ in self._seed) / n
                self._loss = math.fsum(lo for _, lo in self._seed) / n
                self._seed = None
        else:
            assert self._gain is not None
            self._gain = (self._gain * (n - 1) + gain) / n
            self._loss = (self._loss * (n - 1) + loss) / n

    def extend(self, xs: Iterable[float]) -> None:
        """`update` each of `xs` in turn, in a tight loop with the same float operations: a zero
        gain or loss adds +0.0, which leaves a non-negative sum unchanged, so it is left out."""
        it = iter(xs)
        while self._seed is not None or self._last is None:
            x = next(it, None)
            if x is None:
                return
            self.update(x)
        gain, loss, prev = self._gain, self._loss, self._last
        assert gain is not None
        n = self.n
        k = n - 1
        for x in it:
            d = x - prev
            prev = x
            if d > 0:
                gain = (gain * k + d) / n
                loss = (loss * k) / n
            else:
                gain = (gain * k) / n
                loss = (loss * k - d) / n
        self._gain, self._loss, self._last = gain, loss, prev

    @property
    def value(self) -> float | None:
        return None if self._gain is None else rsi_from_averages(self._gain, self._loss)


class Rsi:
    """`WilderRsi(period)` of the closes of one timeframe's candles (the tick strategies' `rsi`)."""

    def __init__(self, period: int = 14, timeframe: str = "1m") -> None:
        self.period = period
        self.interval_s = TIMEFRAMES_S[timeframe]
        self._wilder = WilderRsi(period)
        self.longest_s = float(self.interval_s * (period + 1))

    def on_candle(self, interval_s: int, close: float) -> None:
        if interval_s == self.interval_s:
            self._wilder.update(close)

    def value(self, now_ms: int) -> float | None:
        return self._wilder.value
