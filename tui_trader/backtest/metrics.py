"""Backtest layer: performance metrics of a run, pure functions of its trade list and equity curve.

Inputs: the closed and open trades (`recorder.BacktestTrade`) and the equity curve, a list of
(data time ms, equity USDT) sampled every `every_ms` (see `recorder.py`). Definitions:

* year = 365 days (crypto trades every day); risk-free rate = 0.
* total_return_pct = (last equity / first equity - 1) x 100.
* cagr_pct = ((last / first) ^ (1 / years) - 1) x 100, years = (last ts - first ts) / year;
  None when the curve spans no time or the figure overflows a float (a few days annualised).
* returns r_i = equity_i / equity_(i-1) - 1 between consecutive curve points; periods per year
  P = year / every_ms. sharpe = mean(r) / stdev(r) x sqrt(P) (sample stdev, n - 1);
  sortino = mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(P); None with fewer than 2 returns or a zero
  denominator.
* max_drawdown_pct = max over points of (running peak - equity) / running peak x 100.
  max_drawdown_duration_s = longest time from a running peak until the curve is back at or above
  it (or until the end when it never is).
* calmar = cagr_pct / max_drawdown_pct; None when either is None or the drawdown is 0.
* Trade figures use closed trades only (net P&L = gross - fees - funding): trades = their number,
  win_rate_pct = share with net > 0, profit_factor = sum of winning nets / |sum of losing nets|
  (None without a losing trade), expectancy = mean net P&L (USDT), avg_trade_duration_s = mean of
  exit - entry, liquidations = trades ended by liquidation.
* exposure_pct = time with at least one position open (open trades count until the end) / curve
  span x 100.
* fees_paid, funding_paid (positive = paid), net_pnl = last - first equity: USDT, exact decimals.
"""

from __future__ import annotations

import math
import statistics
from decimal import Decimal
from typing import Any, Sequence

from tui_trader.backtest.recorder import BacktestTrade
from tui_trader.domain.models import ZERO

YEAR_MS = 365 * 86_400_000


def compute_metrics(trades: Sequence[BacktestTrade], curve: Sequence[tuple[int, Decimal]], every_ms: int) -> dict[str, Any]:
    """Every metric of the module docstring, by name (Decimal money, float ratios, None = undefined)."""
    closed = [t for t in trades if t.closed]
    values = [float(e) for _, e in curve]
    start_ms, end_ms = (curve[0][0], curve[-1][0]) if curve else (0, 0)
    first, last = (curve[0][1], curve[-1][1]) if curve else (ZERO, ZERO)
    cagr = cagr_pct(float(first), float(last), end_ms - start_ms)
    dd, dd_ms = max_drawdown(curve)
    returns = periodic_returns(values)
    per_year = YEAR_MS / every_ms
    nets = [t.net_pnl for t in closed]
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    return {
        "total_return_pct": (float(last) / float(first) - 1) * 100 if first else None,
        "cagr_pct": cagr,
        "sharpe": sharpe(returns, per_year),
        "sortino": sortino(returns, per_year),
        "calmar": cagr / dd if cagr is not None and dd > 0 else None,
        "max_drawdown_pct": dd,
        "max_drawdown_duration_s": dd_ms / 1000,
        "trades": len(closed),
        "open_trades": len(trades) - len(closed),
        "win_rate_pct": 100.0 * len(wins) / len(closed) if closed else None,
        "profit_factor": float(sum(wins, ZERO) / -sum(losses, ZERO)) if losses else None,
        "expectancy": sum(nets, ZERO) / len(nets) if nets else None,
        "avg_trade_duration_s": statistics.fmean((t.exit_ms - t.entry_ms) / 1000 for t in closed) if closed else None,  # type: ignore[operator]
        "exposure_pct": exposure_pct(trades, start_ms, end_ms),
        "liquidations": sum(1 for t in closed if t.liquidated),
        "fees_paid": sum((t.fees for t in trades), ZERO),
        "funding_paid": sum((t.funding for t in trades), ZERO),
        "net_pnl": last - first,
        "start_equity": first,
        "end_equity": last,
    }


def cagr_pct(first: float, last: float, span_ms: int) -> float | None:
    if span_ms <= 0 or first <= 0:
        return None
    if last <= 0:
        return -100.0
    try:
        return (math.exp(math.log(last / first) * YEAR_MS / span_ms) - 1) * 100
    except OverflowError:
        return None


def periodic_returns(values: Sequence[float]) -> list[float]:
    return [b / a - 1 for a, b in zip(values, values[1:]) if a > 0]


def sharpe(returns: Sequence[float], per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    sd = statistics.stdev(returns)
    return statistics.fmean(returns) / sd * math.sqrt(per_year) if sd > 0 else None


def sortino(returns: Sequence[float], per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    downside = math.sqrt(statistics.fmean(min(r, 0.0) ** 2 for r in returns))
    return statistics.fmean(returns) / downside * math.sqrt(per_year) if downside > 0 else None


def max_drawdown(curve: Sequence[tuple[int, Decimal]]) -> tuple[float, int]:
    """(deepest fall from a running peak in %, longest time under a running peak in ms)."""
    worst, longest = 0.0, 0
    peak, peak_ms, under = None, 0, False
    for ts, equity in curve:
        e = float(equity)
        if peak is None or e >= peak:
            if under:
                longest = max(longest, ts - peak_ms)
            peak, peak_ms, under = e, ts, False
        else:
            under = True
            if peak > 0:
                worst = max(worst, (peak - e) / peak * 100)
    if under and curve:
        longest = max(longest, curve[-1][0] - peak_ms)
    return worst, longest


def exposure_pct(trades: Sequence[BacktestTrade], start_ms: int, end_ms: int) -> float | None:
    """Share of [start, end] with at least one position open (overlapping trades counted once)."""
    if end_ms <= start_ms:
        return None
    spans = sorted((max(t.entry_ms, start_ms), min(t.exit_ms if t.exit_ms is not None else end_ms, end_ms)) for t in trades)
    covered, reach = 0, start_ms
    for a, b in spans:
        a = max(a, reach)
        if b > a:
            covered += b - a
            reach = b
    return 100.0 * covered / (end_ms - start_ms)


def metrics_to_json(metrics: dict[str, Any]) -> dict[str, Any]:
    """Decimals as exact strings, floats and None as they are."""
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in metrics.items()}
