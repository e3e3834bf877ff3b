"""Domain layer: position- and signal-level indicators, owned by the strategy machine.

`unrealized_pnl_pct` (§2.8) needs the machine's own entry price, `momentum_reversal` (§2.9) the
peak velocity since the signal: neither is market data, so the machine computes them and they
are undefined (None, never 0) without a position / an active signal.
"""

from __future__ import annotations

from tui_trader.domain.models import Side


def unrealized_pnl_pct(side: Side, entry: float | None, price: float | None) -> float | None:
    """Unlevered % P&L of a position at `price`: SHORT (entry - P)/entry, LONG (P - entry)/entry."""
    if entry is None or price is None or entry <= 0:
        return None
    return side.sign * (price - entry) / entry * 100.0


def momentum_reversal(v_now: float | None, v_peak: float | None, min_peak: float = 0.05) -> float | None:
    """(v_now - v_peak) / v_peak x 100; None without a signal or below `min_peak` %/s."""
    if v_now is None or v_peak is None or v_peak < min_peak:
        return None
    return (v_now - v_peak) / v_peak * 100.0


def next_peak(v_peak: float | None, v_now: float | None) -> float | None:
    """Running maximum of the velocity since the signal (None values leave it unchanged)."""
    if v_now is None:
        return v_peak
    return v_now if v_peak is None else max(v_peak, v_now)
