"""Domain layer: how long a strategy must watch a symbol before S1 may fire (strategy.md §1.3).

`global_limits.warmup_s` when set, else the longest window of any S1 indicator: a signal computed
on half a baseline is not a signal. Candle-based indicators need whole candles (RSI: period + 1
closes of its timeframe; candle volume surge: `candles + 1` one-minute bars).
"""

from __future__ import annotations

from tui_trader.domain.indicators.rsi import TIMEFRAMES_S
from tui_trader.domain.strategy.schema import (
    Model,
    MomentumReversalSpec,
    PumpSpec,
    RsiSpec,
    Strategy,
    TwpaSpec,
    VelocitySpec,
    VolumeSurgeSpec,
)


def spec_window_s(spec: Model, strategy: Strategy) -> float:
    """Seconds of history the indicator needs before its value means anything."""
    if isinstance(spec, TwpaSpec):
        return spec.window[0]
    if isinstance(spec, (PumpSpec, VelocitySpec)):
        return max(spec.current[0], spec.baseline[0])
    if isinstance(spec, VolumeSurgeSpec):
        return max(spec.current[0], spec.baseline[0]) if spec.source == "trades" else 60.0 * (spec.candles + 1)
    if isinstance(spec, RsiSpec):
        return float(TIMEFRAMES_S[spec.timeframe] * (spec.period + 1))
    if isinstance(spec, MomentumReversalSpec):
        return spec_window_s(strategy.resolve(spec.velocity), strategy)
    return 0.0


def warmup_s(strategy: Strategy) -> float:
    if strategy.global_limits.warmup_s is not None:
        return strategy.global_limits.warmup_s
    specs = [strategy.resolve(c.indicator) for c in strategy.s1_signal.conditions]
    return max((spec_window_s(spec, strategy) for spec in specs), default=0.0)
