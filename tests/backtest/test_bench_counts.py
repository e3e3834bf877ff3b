"""`bench/backtest.py --counts` measures by patching engine methods for one run: its figures must
add up and the engine must be left as it was (the README quotes them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tui_trader.backtest.quiet_ticks import QuietTicks
from tui_trader.backtest.runner import run_backtest
from tui_trader.domain.strategy.machine import StrategyMachine

BENCH = Path(__file__).resolve().parents[2] / "bench" / "backtest.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_backtest", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_add_up_and_leave_the_engine_unpatched(real_slice):
    originals = (StrategyMachine.on_tick, StrategyMachine.quiet_until, QuietTicks._flush_stretches, QuietTicks.on_step,
                 QuietTicks.take_candle, QuietTicks.finish)
    counts = _bench().count_work(real_slice)
    assert (StrategyMachine.on_tick, StrategyMachine.quiet_until, QuietTicks._flush_stretches, QuietTicks.on_step,
            QuietTicks.take_candle, QuietTicks.finish) == originals
    bars = run_backtest(None, [real_slice]).bars
    assert counts["stretch_candles_count"] + counts["ticked_candles_count"] == bars
    assert 0 < counts["stretch_candles_count"] < bars  # the slice has quiet hours and four pump shorts
    phases = sum(v for k, v in counts.items() if k.endswith("_steps_count") and k != "strategy_steps_count")
    assert phases == counts["strategy_steps_count"] > 0
    assert counts["position_active_steps_count"] > 0 and counts["bound_analyses_count"] > 0
    assert counts["stretch_us_per_candle"] > 0 and counts["ticked_us_per_candle"] > 0
    assert 0 < counts["ticked_share_of_time_pct"] < 100
