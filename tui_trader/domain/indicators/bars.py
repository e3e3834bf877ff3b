"""Domain layer: incremental candle indicators for bar mode, updated once per CLOSED bar.

Each indicator is a small class: `update(x)` with the newest closed bar's value(s), then `value`
(a float, or None while undefined). Every update costs O(1) amortised. Bars are counted, not
timed: bar t is the t-th value given to `update` (t = 0, 1, ...), gaps in the data do not exist
here. Inputs are finite floats; the OHLCV fields they come from are >= 0 (prices, volumes), and
the zero-denominator rules below assume that.

Definitions (x is the series given to `update`, t the newest bar):

- `RollingMin / RollingMax(n, offset=k)`: min / max of x[t-k-n+1 .. t-k] (n bars ending k bars
  before t; "min(close[t-60 .. t-1])" is n=60, k=1). Defined for t >= n+k-1. Exact (no
  arithmetic): a monotonic deque of the window's candidates.
- `RollingSum(n, offset=k)`: the exact sum of the same window, rounded once to the nearest float
  (ties to even) - the value `math.fsum` gives. The window is held as one Python integer on the
  2^-1074 grid (every finite float is an integer multiple of 2^-1074), so adding the entering bar
  and subtracting the leaving one never loses a bit, however long the stream; the float is one
  correctly rounded int / 2^1074 division. No Kahan: compensated sums are not exact.
- `RollingMean(n, offset=k)`: RollingSum / n in float arithmetic (that rounded sum, divided once).
  `Sma(n)` is RollingMean(n, 0).
- `Ema(n)`: alpha = 2 / (n + 1); seeded at t = n-1 with Sma(n) of the first n values, then
  ema <- (x - ema) * alpha + ema (that order of operations). Defined for t >= n-1.
- `Rsi(n)` (Wilder): changes d = x[t] - x[t-1], gain = max(d, 0), loss = max(-d, 0). The average
  gain G and loss L are seeded with the simple mean of the first n changes (rounded sum / n, as
  RollingMean), then G <- (G (n-1) + gain) / n, the same for L. It is `rsi.WilderRsi`, the one
  recurrence the tick strategies' RSI runs too: 100 when L == 0 < G, 50 when G == L == 0 (a flat market is
  neutral), else 100 - 100 / (1 + G / L). Defined for t >= n (n changes need n+1 bars).
- `ChangeFromLow(n)`: x[t] / min(x[t-n .. t-1]) - 1, a fraction (0.07 is 7 %), the "pump_pct" of
  a close series; `ChangeFromHigh(n)`: x[t] / max(x[t-n .. t-1]) - 1 (negative in a dump).
  Defined for t >= n. A zero extreme: +inf when x[t] > 0, None when x[t] == 0 (0/0: no change to
  measure, and no threshold is met).
- `VolumeSurge(recent=a, base=b)`: mean(x[t-a+1 .. t]) / mean(x[t-a-b+1 .. t-a]) with both means
  RollingMean's (sum rounded once, / length), the ratio one float division. Defined for
  t >= a+b-1. If the base mean is 0 (its sum is 0 - or below b * 2^-1075, so small that the
  mean underflows to 0) the surge is met exactly when the recent sum is > 0: value = +inf then,
  None when it is 0 (0/0: no volume at all, so no threshold is met).

Parity (tests/domain/test_bar_indicators.py, against batch numpy computations of these
definitions, at every bar of random series and of the bundled BCC/BTC file): bit for bit for
every indicator. The recurrences (EMA, Wilder) are bit for bit because the batch runs the same
float operations in the same order; their sums are exact, so summation order cannot differ.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from tui_trader.domain.indicators.rsi import WilderRsi

GRID_BITS = 1074  # 2^-1074: the smallest subnormal, a grid every finite float lies on
_GRID = 1 << GRID_BITS


def grid_int(x: float) -> int:
    """x as an exact integer multiple of 2^-1074 (ValueError/OverflowError for NaN/inf)."""
    num, den = x.as_integer_ratio()  # den is a power of two, at most 2^1074
    return num << (GRID_BITS + 1 - den.bit_length())


class _Lagged:
    """Feeds a window the value of k bars ago: x[t-k] enters at bar t (none for the first k)."""

    def __init__(self, n: int, offset: int) -> None:
        if n < 1 or offset < 0:
            raise ValueError(f"window of n={n} bars at offset {offset}: need n >= 1, offset >= 0")
        self.n = n
        self.offset = offset
        self._delay: deque[float] = deque()
        self._entered = 0  # values that entered the window so far

    def _lag(self, x: float) -> float | None:
        if not self.offset:
            return x
        self._delay.append(x)
        return self._delay.popleft() if len(self._delay) > self.offset else None


class _RollingExtreme(_Lagged):
    _keep_min = True

    def __init__(self, n: int, offset: int = 0) -> None:
        super().__init__(n, offset)
        self._cands: deque[tuple[int, float]] = deque()  # (entry index, value), values monotonic

    def update(self, x: float) -> None:
        entering = self._lag(x)
        if entering is None:
            return
        i, cands = self._entered, self._cands
        self._entered += 1
        if self._keep_min:
            while cands and cands[-1][1] >= entering:
                cands.pop()
        else:
            while cands and cands[-1][1] <= entering:
                cands.pop()
        cands.append((i, entering))
        if cands[0][0] <= i - self.n:
            cands.popleft()

    @property
    def value(self) -> float | None:
        return self._cands[0][1] if self._entered >= self.n else None


class RollingMin(_RollingExtreme):
    """min(x[t-k-n+1 .. t-k]); defined for t >= n+k-1 (module docstring)."""

    _keep_min = True


class RollingMax(_RollingExtreme):
    """max(x[t-k-n+1 .. t-k]); defined for t >= n+k-1 (module docstring)."""

    _keep_min = False


class RollingSum(_Lagged):
    """Exact sum of x[t-k-n+1 .. t-k], rounded once (= math.fsum); defined for t >= n+k-1."""

    def __init__(self, n: int, offset: int = 0) -> None:
        super().__init__(n, offset)
        self._window: deque[int] = deque()  # grid integers of the window's values
        self._sum = 0  # their exact sum, on the 2^-1074 grid

    def update(self, x: float) -> None:
        entering = self._lag(x)
        if entering is None:
            return
        g = grid_int(entering)
        self._window.append(g)
        self._sum += g
        self._entered += 1
        if len(self._window) > self.n:
            self._sum -= self._window.popleft()

    @property
    def value(self) -> float | None:
        if self._entered < self.n:
            return None
        return self._sum / _GRID  # int / int: correctly rounded, ties to even


class RollingMean(RollingSum):
    """RollingSum / n (the rounded sum divided once); defined for t >= n+k-1."""

    @property
    def value(self) -> float | None:
        total = super().value
        return None if total is None else total / self.n


class Sma(RollingMean):
    """Simple moving average of the last n bars, x[t-n+1 .. t]: RollingMean(n, offset=0)."""

    def __init__(self, n: int) -> None:
        super().__init__(n, 0)


class Ema:
    """EMA, alpha = 2/(n+1), seeded with Sma(n) of the first n values; defined for t >= n-1."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.alpha = 2.0 / (n + 1)
        self._seed: Sma | None = Sma(n)
        self._ema: float | None = None

    def update(self, x: float) -> None:
        if self._seed is not None:
            self._seed.update(x)
            self._ema = self._seed.value
            if self._ema is not None:
                self._seed = None  # seeded: the window is no longer needed
        else:
            assert self._ema is not None
            self._ema = (x - self._ema) * self.alpha + self._ema

    def extend(self, xs: Iterable[float]) -> None:
        """`update` each of `xs` in turn (the same operations: the same floats), in a tight loop."""
        it = iter(xs)
        while self._seed is not None:
            x = next(it, None)
            if x is None:
                return
            self.update(x)
        ema, alpha = self._ema, self.alpha
        assert ema is not None
        for x in it:
            ema = (x - ema) * alpha + ema
        self._ema = ema

    @property
    def value(self) -> float | None:
        return self._ema


Rsi = WilderRsi  # the one Wilder recurrence (rsi.py); the definition above is its docstring's


def _ratio_minus_one(x: float, extreme: float) -> float | None:
    if extreme == 0:
        return math.inf if x > 0 else None
    return x / extreme - 1.0


class ChangeFromLow:
    """x[t] / min(x[t-n .. t-1]) - 1 ("pump_pct"); defined for t >= n; zero low: +inf or None."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._extreme: RollingMin | RollingMax = RollingMin(n, 1)
        self._x = 0.0

    def update(self, x: float) -> None:
        self._extreme.update(x)
        self._x = x

    @property
    def value(self) -> float | None:
        extreme = self._extreme.value
        return None if extreme is None else _ratio_minus_one(self._x, extreme)


class ChangeFromHigh(ChangeFromLow):
    """x[t] / max(x[t-n .. t-1]) - 1 (a dump is negative); defined for t >= n; zero high: +inf or None."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self._extreme = RollingMax(n, 1)


class VolumeSurge:
    """mean(x[t-a+1 .. t]) / mean(x[t-a-b+1 .. t-a]); defined for t >= a+b-1. A zero base mean:
    +inf when the recent sum is > 0 (the surge is met), None when it is 0 (module docstring).

    One delay line for both windows (each bar converted to the grid once): the same values, bit
    for bit, as RollingMean(a, 0) and RollingMean(b, a), at about half their cost."""

    def __init__(self, recent: int = 5, base: int = 60) -> None:
        if recent < 1 or base < 1:
            raise ValueError(f"volume surge over {recent} / {base} bars: both need >= 1")
        self.recent_n = recent
        self.base_n = base
        self._bars: deque[int] = deque()  # grid integers of the last recent + base bars, oldest first
        self._recent = 0  # exact sums on the 2^-1074 grid
        self._base = 0

    def update(self, x: float) -> None:
        g = grid_int(x)
        bars = self._bars
        bars.append(g)
        self._recent += g
        if len(bars) > self.recent_n:
            moved = bars[-self.recent_n - 1]  # leaves the recent window, enters the base one
            self._recent -= moved
            self._base += moved
            if len(bars) > self.recent_n + self.base_n:
                self._base -= bars.popleft()

    @property
    def value(self) -> float | None:
        if len(self._bars) < self.recent_n + self.base_n:
            return None
        base = self._base / _GRID / self.base_n
        if base == 0:
            return math.inf if self._recent > 0 else None
        return self._recent / _GRID / self.recent_n / base
