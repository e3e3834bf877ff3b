"""Backtest layer: the vectorised pre-screen of a bar-mode backtest - where S1 may fire at all.

`s1_may_fire(strategy, columns)` is a boolean per bar: False only where S1 certainly does not
fire at that bar's close. It never decides anything: it only lets the bar replay (`bar_replay.py`)
leave out bars while nothing else can happen (flat, no order, no deadline); the bars it keeps
are replayed in full and decided by the engine on its own exact indicators.

Each S1 condition's indicator is approximated with numpy over all bars at once (window sums
and means by pairwise summation, exact min / max, one division for ratios), the approximation
widened by a relative `SLACK` - far above its error (a window sum of n non-negative floats is
within (n-1) x 2^-53 of exact, relatively) - before it is compared with the threshold. An
indicator this module cannot approximate (EMA, RSI: recurrences) says "may" everywhere; so does
anything unusual (a silent volume base that only underflows). Undefined values (too few bars)
are false, as in the engine, at the same bars (the same definitions). Proven by
`tests/backtest/test_bar_mode.py`: on random series the screen keeps every bar where the
engine's S1 fires, and accelerated and plain runs make the same trades.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tui_trader.domain.strategy.schema import (
    BarChangeSpec,
    BarRollingSpec,
    BarSmaSpec,
    BarVolumeSurgeSpec,
    Strategy,
)

SLACK = 1e-9
_TINY_BASE = 2.0**-1000  # a volume mean this small may underflow to zero in the exact engine: say "may"


def s1_may_fire(strategy: Strategy, columns: Any) -> np.ndarray:
    """One bool per bar: may S1 fire at this bar's close (machine MONITORING)?"""
    n = len(columns.ts)
    section = strategy.s1_signal
    if not section.conditions:
        return np.zeros(n, dtype=bool)  # an empty section never fires
    verdicts = []
    for cond in section.conditions:
        spec = strategy.resolve(cond.indicator)
        approx = _approx(spec, columns, n)
        if approx is None:
            verdicts.append(np.ones(n, dtype=bool))  # cannot tell: may
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            wide = np.abs(approx) * SLACK
            if cond.operator in (">", ">="):
                verdict = (approx + wide) >= cond.value
            else:
                verdict = (approx - wide) <= cond.value
        verdicts.append(verdict)  # NaN (undefined) compares False, as the engine's None
    out = verdicts[0].copy()
    for v in verdicts[1:]:
        out = out & v if section.match == "all" else out | v
    return out


def _approx(spec: Any, columns: Any, n: int) -> np.ndarray | None:
    """The indicator at every bar (NaN where undefined), approximately; None: not approximated.
    Machine-owned values (unrealised P&L) are undefined while flat: NaN, never fires."""
    if getattr(spec, "type", "") == "unrealized_pnl_pct":
        return np.full(n, np.nan)
    if isinstance(spec, BarRollingSpec):
        x = _col(columns, spec.field)
        if spec.stat in ("min", "max"):
            return _rolling(x, spec.bars, spec.offset, np.min if spec.stat == "min" else np.max)
        total = _rolling(x, spec.bars, spec.offset, np.sum)
        return total if spec.stat == "sum" else total / spec.bars
    if isinstance(spec, BarSmaSpec):
        return _rolling(_col(columns, spec.field), spec.bars, 0, np.sum) / spec.bars
    if isinstance(spec, BarChangeSpec):
        x = _col(columns, spec.field)
        extreme = _rolling(x, spec.bars, 1, np.min if spec.type == "bar_change_from_low" else np.max)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = x / extreme - 1.0
        out[(extreme == 0) & (x > 0)] = np.inf
        return out
    if isinstance(spec, BarVolumeSurgeSpec):
        x = _col(columns, spec.field)
        recent = _rolling(x, spec.recent, 0, np.sum) / spec.recent
        base = _rolling(x, spec.base, spec.recent, np.sum) / spec.base
        with np.errstate(divide="ignore", invalid="ignore"):
            out = recent / base
        out[(base < _TINY_BASE) & (recent > 0)] = np.inf  # a silent base: any surge is met (or may be)
        return out
    return None


def _col(columns: Any, field: str) -> np.ndarray:
    return np.asarray(getattr(columns, field), dtype=np.float64)


def _rolling(x: np.ndarray, bars: int, offset: int, agg: Any) -> np.ndarray:
    """agg(x[t-offset-bars+1 .. t-offset]) at each bar t (NaN before the window is full)."""
    n = len(x)
    out = np.full(n, np.nan)
    first = bars + offset - 1
    if n > first:
        windows = sliding_window_view(x, bars)  # windows[j] = x[j .. j+bars-1]
        out[first:] = agg(windows[: n - first], axis=1)
    return out
