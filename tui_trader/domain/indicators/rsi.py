"""Domain layer: Wilder RSI on closed candles of one timeframe (strategy.md §2.6).

Seed G and L with the plain means of the first `period` gains and losses, then smooth:
G <- (G (period - 1) + gain) / period. RSI = 100 - 100 / (1 + G / L); L = 0 and G > 0 -> 100;
G = L = 0 -> 50 (a flat market is neutral, not overbought). Undefined until `period + 1` closes.
Only candles whose interval equals the timeframe are used; the forming candle never is
(`include_partial` is not supported: it would make bar backtests and live disagree).
"""

from __future__ import annotations

TIMEFRAMES_S = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400}


def rsi_from_averages(gain: float, loss: float) -> float:
    if loss == 0:
        return 50.0 if gain == 0 else 100.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


class Rsi:
    def __init__(self, period: int = 14, timeframe: str = "1m") -> None:
        self.period = period
        self.interval_s = TIMEFRAMES_S[timeframe]
        self._last_close: float | None = None
        self._count = 0  # price changes seen
        self._gain = 0.0
        self._loss = 0.0
        self.longest_s = float(self.interval_s * (period + 1))

    def on_candle(self, interval_s: int, close: float) -> None:
        if interval_s != self.interval_s:
            return
        prev, self._last_close = self._last_close, close
        if prev is None:
            return
        d = close - prev
        gain, loss = max(d, 0.0), max(-d, 0.0)
        n = self.period
        self._count += 1
        if self._count <= n:  # seed: running sums, divided once complete
            self._gain += gain
            self._loss += loss
            if self._count == n:
                self._gain /= n
                self._loss /= n
        else:
            self._gain = (self._gain * (n - 1) + gain) / n
            self._loss = (self._loss * (n - 1) + loss) / n

    def value(self, now_ms: int) -> float | None:
        if self._count < self.period:
            return None
        return rsi_from_averages(self._gain, self._loss)
