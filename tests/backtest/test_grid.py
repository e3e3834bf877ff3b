"""Grid specs: parsing, dotted paths into the strategy, validation by the schema, ranking."""

from __future__ import annotations

import pytest

from tui_trader.backtest.grid import GridError, combinations, parse_grid, rank
from tui_trader.backtest.runner import BacktestResult
from tui_trader.engine.strategy_runner import load_strategy


def test_parse_values_and_paths():
    grid = parse_grid(["z1_entry.order.leverage=2,3", "s1_signal.conditions[0].value=5.5,7", "emergency_exit.cancel_pending=true"])
    assert grid == {"z1_entry.order.leverage": [2, 3], "s1_signal.conditions[0].value": [5.5, 7], "emergency_exit.cancel_pending": [True]}
    combos = combinations(load_strategy(None), grid)
    assert len(combos) == 4
    params, strategy = combos[-1]
    assert params == {"z1_entry.order.leverage": 3, "s1_signal.conditions[0].value": 7, "emergency_exit.cancel_pending": True}
    assert strategy.z1_entry.order.leverage == 3 and strategy.s1_signal.conditions[0].value == 7


@pytest.mark.parametrize("spec", ["", "=1", "a=", "a.b=1,2 extra", "a..b=1"])
def test_bad_specs(spec):
    with pytest.raises(GridError):
        combinations(load_strategy(None), parse_grid([spec]))


def _result(value):
    return BacktestResult("x", 0, "finished", "s", [], None, None, {}, {"sharpe": value, "max_drawdown_pct": value}, [], [])


def test_rank_best_first_lower_is_better_for_drawdown_undefined_last():
    results = [_result(1.0), _result(None), _result(3.0), _result(2.0)]
    assert [r.metrics["sharpe"] for r in rank(results, "sharpe")] == [3.0, 2.0, 1.0, None]
    assert [r.metrics["max_drawdown_pct"] for r in rank(results, "max_drawdown_pct")] == [1.0, 2.0, 3.0, None]
